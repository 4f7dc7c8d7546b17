"""Body limits for every route: a size cap, and a deadline for the whole body to arrive."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wasmwiz.errors import PayloadTooLarge, RequestTimeout
from wasmwiz.http_common.problems import error_response


class RequestLimitsMiddleware:
    """Wraps `receive` so that reading the body raises a domain error past either limit.

    The error travels up through the route like any other, so the one problem mapping
    turns it into a 408 or 413. A client that trickles its body (slowloris) is answered
    and disconnected at the deadline instead of holding a connection and its buffers;
    routes with their own, smaller limits (the execute form) still apply them.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout: float) -> None:
        self.app = app
        self._max_body_bytes = max_body_bytes
        self._body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._max_body_bytes:
            # Refused before authentication or routing: nothing of it needs reading.
            response = error_response(Request(scope), self._too_large())
            await response(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self._body_timeout
        received = 0
        body_done = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
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
                if received > self._max_body_bytes:
                    raise self._too_large()
                body_done = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than {self._max_body_bytes} bytes.",
            code="request_too_large",
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
