"""Body limits for every route: a size cap by route, a deadline, and the memory budget."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wasmwiz.errors import PayloadTooLarge, RequestTimeout, WasmWizError
from wasmwiz.http_common.memory_budget import MemoryBudget
from wasmwiz.http_common.problems import error_response
from wasmwiz.problem_codes import ProblemCode

# What a body costs while it is held, until the request is answered. The execute form
# keeps one copy of each payload field (http_common/multipart.py), but a run hands its
# stdin to wasmtime, which keeps a copy of its own for the run (and a ctypes copy exists
# while it is handed over): a body that is mostly stdin is held twice or more.
BODY_COPIES = 2


class RequestLimitsMiddleware:
    """Wraps `receive` so that reading the body raises a domain error past any limit.

    The limit is chosen by path before anything is read: the upload routes (`upload_paths`)
    take `max_body_bytes`, every other route `max_form_body_bytes`, small enough that no
    form parser ever spools a part to disk. The error travels up through the route like
    any other, so the one problem mapping turns it into a 408, 413 or 503; a route whose
    parser turns it into something else (FastAPI answers 400 to any error while it reads a
    form) has its answer replaced by the refusal. A client that trickles its body
    (slowloris) is answered and disconnected at the deadline instead of holding a
    connection and its buffers; routes with their own, smaller limits (the execute form)
    still apply them.

    The body is charged to the memory `budget` when the route first reads it (after
    authentication and admission, which read nothing), and credited when the request
    has been answered: until then the route, and the run, hold those bytes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout: float,
        max_form_body_bytes: int | None = None,
        upload_paths: Collection[str] = (),
        budget: MemoryBudget | None = None,
    ) -> None:
        self.app = app
        self._max_body_bytes = max_body_bytes
        self._max_form_body_bytes = max_form_body_bytes or max_body_bytes
        self._upload_paths = frozenset(upload_paths)
        self._body_timeout = body_timeout
        self._budget = budget

    def limit_for(self, path: str) -> int:
        if path in self._upload_paths:
            return self._max_body_bytes
        return self._max_form_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = declared_content_length(scope)
        if declared is not None and declared > limit:
            # Refused before authentication or routing: nothing of it needs reading.
            response = error_response(Request(scope), _too_large(limit))
            await response(scope, receive, send)
            return
        budget = self._budget
        deadline = asyncio.get_running_loop().time() + self._body_timeout
        received = 0
        charged = 0
        body_done = False
        refusal: WasmWizError | None = None
        replaced = False

        async def read() -> Message:
            nonlocal received, charged, body_done
            if body_done:
                return await receive()
            if budget is not None and charged == 0 and declared:
                await budget.acquire(declared * BODY_COPIES)  # before a byte is read
                charged = declared
            try:
                # asyncio.timeout, not wait_for: no task is created per message, and a
                # message already buffered (a small body) costs only a timer handle.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"The request body did not arrive within {self._body_timeout:g} seconds.",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
                if budget is not None and received > charged:
                    # A chunked body, or one longer than declared: charged as it comes.
                    await budget.acquire((received - charged) * BODY_COPIES)
                    charged = received
                body_done = not message.get("more_body", False)
            return message

        async def limited_receive() -> Message:
            nonlocal refusal
            try:
                return await read()
            except WasmWizError as exc:
                refusal = exc
                raise

        async def refusing_send(message: Message) -> None:
            nonlocal replaced
            if refusal is not None and message["type"] == "http.response.start":
                replaced = True
                await error_response(Request(scope), refusal)(scope, receive, send)
            elif not replaced:
                await send(message)

        try:
            await self.app(scope, limited_receive, refusing_send)
        finally:
            if budget is not None:
                budget.release(charged * BODY_COPIES)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes.", code=ProblemCode.REQUEST_TOO_LARGE
    )


def declared_content_length(scope: Scope) -> int | None:
    """The body's Content-Length, or None when there is none (or it is not a number)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
