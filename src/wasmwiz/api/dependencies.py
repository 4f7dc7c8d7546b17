"""FastAPI dependencies: the app's services and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from wasmwiz.services.container import Services
from wasmwiz.services.principals import Principal


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(request: Request) -> Principal:
    services = get_services(request)
    async with services.database.session() as session:
        principal = await services.api_keys.authenticate(
            session, request.headers.get("authorization")
        )
        await session.commit()
    # The access log names the key by its id, never by its value.
    request.state.key_id = str(principal.api_key_id) if principal.api_key_id else None
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
