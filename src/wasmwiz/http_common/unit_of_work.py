"""One unit of work per request: a session the route commits once, before the response leaves.

A handler names `DatabaseSessionDep` and calls services with that session; services
`flush()`, never commit. `UnitOfWorkRoute` ends the unit after the handler has produced its
response and before a byte of it is sent: a success (status under 400) commits; a refusal
(an exception, or a page of status 400 or more that the handler returned) rolls back. A
commit that fails raises from here, so the client gets the error's problem details, never
a 2xx or 303 for work that was lost.

Why a route class and not a dependency with `yield`: FastAPI (0.165 here) runs a `yield`
dependency's exit code after the response is sent, unless it is declared with
`Depends(..., scope="function")`. With that scope it runs before, but it sees only
exceptions, and the web pages' route class (`WebRoute`) turns a refusal into an error page
inside that scope: such a dependency would commit what the refused request had flushed.

The session opens on first use, so a route that never touches it costs a dictionary lookup.
A request with an unsafe method gets a writer (`BEGIN IMMEDIATE` on SQLite) at its first
statement; a safe one a plain session.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from wasmwiz.http_common.app_state import app_state
from wasmwiz.persistence import Database

_SCOPE_KEY = "wasmwiz.unit_of_work"
# The methods that change state; a unit of work for one of them writes.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class UnitOfWork:
    """The request's session, opened on first use and ended once by the route."""

    def __init__(self, database: Database, *, writes: bool) -> None:
        self._database = database
        self._writes = writes
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            database = self._database
            self._session = database.writer() if self._writes else database.session()
        return self._session

    async def end(self, *, commit: bool) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if commit:
                await session.commit()
            else:
                await session.rollback()
        except BaseException:
            # A connection whose COMMIT failed is in no known state (SQLite keeps the
            # transaction open after a deferred constraint fails it, and the pool, told
            # the transaction ended, would not roll it back): it is closed, not reused.
            await session.invalidate()
            raise
        await session.close()


class UnitOfWorkRoute(APIRoute):
    """A route whose handler may use the request's session: committed here, once."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except BaseException:
                await _end(request, commit=False)
                raise
            await _end(request, commit=response.status_code < 400)
            return response

        return handle


async def _end(request: Request, *, commit: bool) -> None:
    unit: UnitOfWork | None = request.scope.pop(_SCOPE_KEY, None)
    if unit is not None:
        await unit.end(commit=commit)


async def request_session(request: Request) -> AsyncSession:
    """The dependency: this request's session (async: no thread hop for a lookup)."""
    unit: UnitOfWork | None = request.scope.get(_SCOPE_KEY)
    if unit is None:
        if not isinstance(request.scope.get("route"), UnitOfWorkRoute):
            # Nobody would commit it: a route that needs a session is a UnitOfWorkRoute.
            raise RuntimeError(f"{request.url.path}: its route class does not end a unit of work")
        unit = UnitOfWork(app_state(request).database, writes=request.method in UNSAFE_METHODS)
        request.scope[_SCOPE_KEY] = unit
    return unit.session


DatabaseSessionDep = Annotated[AsyncSession, Depends(request_session)]
