"""FastAPI dependencies of the API: the authenticated caller with its scope.

Each API route names the scope it needs in its signature (`KeysWriter`, `UsageReader`,
`Administrator`); the execute route, which authenticates in its body before reading the
form, calls `get_principal`, which requires `execute`. A key without the scope gets 403
`insufficient_scope`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from wasmwiz.http_common.app_state import app_state
from wasmwiz.services.principals import Principal, Scope


async def authenticate(request: Request) -> Principal:
    """The caller behind the request's API key, whatever its scopes."""
    state = app_state(request)
    principal = await state.api_keys.authenticate(
        state.database, request.headers.get("authorization")
    )
    # The access log names the key by its id, never by its value.
    request.state.key_id = str(principal.api_key_id) if principal.api_key_id else None
    return principal


async def get_principal(request: Request) -> Principal:
    """The caller of an execution: an API key with the `execute` scope."""
    principal = await authenticate(request)
    principal.require(Scope.EXECUTE)
    return principal


def require_scope(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the authenticated caller, if its key holds `scope`."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        principal.require(scope)
        return principal

    dependency.__name__ = f"require_{scope.name.lower()}"
    return dependency


UsageReader = Annotated[Principal, Depends(require_scope(Scope.USAGE_READ))]
KeysWriter = Annotated[Principal, Depends(require_scope(Scope.KEYS_WRITE))]
Administrator = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
