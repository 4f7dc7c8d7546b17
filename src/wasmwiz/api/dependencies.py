"""FastAPI dependencies: the app's services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from wasmwiz.services.container import Services
from wasmwiz.services.principals import Principal


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def services_dependency(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain-def dependency on its thread pool, a thread
    # hop per request for one attribute read (measured: bench/, docs/performance.md).
    return get_services(request)


ServicesDep = Annotated[Services, Depends(services_dependency)]


async def get_principal(request: Request) -> Principal:
    services = get_services(request)
    principal = await services.api_keys.authenticate(
        services.database, request.headers.get("authorization")
    )
    # The access log names the key by its id, never by its value.
    request.state.key_id = str(principal.api_key_id) if principal.api_key_id else None
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
