"""What an adapter reads from the app's state: one accessor for the HTTP routes and the pages."""

from __future__ import annotations

from starlette.requests import Request

from wasmwiz.http_common.lifecycle import Lifecycle
from wasmwiz.services.container import Services


def request_services(request: Request) -> Services:
    """The services `create_app` built and keeps on the app's state."""
    services: Services = request.app.state.services
    return services


def app_lifecycle(request: Request) -> Lifecycle:
    """Built with the app, before the lifespan: there from the first request on."""
    lifecycle: Lifecycle = request.app.state.lifecycle
    return lifecycle
