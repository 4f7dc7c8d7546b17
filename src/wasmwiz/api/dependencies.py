"""FastAPI dependencies of the API: the authenticated caller with its scope.

Each API route names the scope it needs in its signature (`Executor`, `KeysWriter`,
`UsageReader`, `Administrator`). A key without the scope gets 403 `insufficient_scope`.
Each of them also spends one call of the account's API budget (429 `api_rate_limited`);
only the runs themselves (`Runner`: execute, batch) spend their tier's limits instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from wasmwiz.http_common.app_state import app_state
from wasmwiz.services.principals import Principal, Scope

# The OpenAPI document's `apiKey` scheme, and the requirement on every route that
# authenticates: FastAPI derives both from this dependency.
API_KEY = HTTPBearer(
    scheme_name="apiKey",
    bearerFormat="ww_…",
    description="An API key: `Authorization: Bearer ww_…`. Create one in the web interface, "
    "with `POST /api/v1/keys`, or `wasmwiz keys create EMAIL`.",
    auto_error=False,
)


async def authenticate(
    request: Request, _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(API_KEY)]
) -> Principal:
    """The caller behind the request's API key, whatever its scopes.

    The raw header is what is checked (`_bearer` is there for the document): a missing key,
    another scheme or a wrong key each get our own 401 with its own detail.
    """
    state = app_state(request)
    principal = await state.api_keys.authenticate(
        state.database, request.headers.get("authorization")
    )
    # The access log names the key by its id, never by its value.
    request.state.key_id = str(principal.api_key_id) if principal.api_key_id else None
    return principal


async def spend_api_call(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """The caller, once it has spent one call of its account's API budget
    (ApiRequestLimit), before the route reads anything."""
    await app_state(request).api_requests.spend_for(principal.user_id, principal.tier)
    return principal


def require_scope(scope: Scope, *, api_call: bool = True) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the authenticated caller, if its key holds `scope`, having spent one
    call of the account's API budget; without `api_call` (the runs, which have their
    tier's limits instead) having spent nothing."""
    if api_call:

        async def dependency(principal: Annotated[Principal, Depends(spend_api_call)]) -> Principal:
            principal.require(scope)
            return principal

    else:

        async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
            principal.require(scope)
            return principal

    dependency.__name__ = f"require_{scope.name.lower()}"
    return dependency


# A run (execute, batch): admitted by the tier's rate, quota and concurrency, not the API
# budget.
Runner = Annotated[Principal, Depends(require_scope(Scope.EXECUTE, api_call=False))]
Executor = Annotated[Principal, Depends(require_scope(Scope.EXECUTE))]
UsageReader = Annotated[Principal, Depends(require_scope(Scope.USAGE_READ))]
KeysWriter = Annotated[Principal, Depends(require_scope(Scope.KEYS_WRITE))]
Administrator = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
