"""What an adapter reads from the app's state: one accessor for the HTTP routes and the pages."""

from __future__ import annotations

from starlette.requests import Request

from wasmwiz.services.container import Services


def request_services(request: Request) -> Services:
    """The services `create_app` built and keeps on the app's state."""
    services: Services = request.app.state.services
    return services
