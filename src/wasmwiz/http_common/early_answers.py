"""Answers sent before the request body was read reach clients that write before they read.

A refusal (413, 401, 429, 503) usually goes out while the client is still sending its
body. If the server then closes the connection, the kernel answers the unread bytes with
a reset, and a client that sends its whole body before reading (Python's urllib, many
others) sees ECONNRESET or EPIPE instead of the problem details. So the response is
written whole but held open: the rest of the body is read and dropped, up to
`drain_bytes` and `drain_timeout`, and only then is the response completed and the
connection closed (`Connection: close`, since the body's end is not where a next request
could begin). A body too large to drain is not waited for: closing at once costs less.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Answered to a client too slow to send its body; draining it would only wait longer.
_NOT_DRAINED = frozenset({408})


class EarlyAnswerMiddleware:
    def __init__(self, app: ASGIApp, *, drain_bytes: int, drain_timeout: float) -> None:
        self.app = app
        self._drain_bytes = drain_bytes
        self._drain_timeout = drain_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        received = 0
        body_done = declared == 0
        drain = False
        held: Message | None = None

        async def tracking_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:
                body_done = True  # disconnected: nothing is left to read
            return message

        async def early_send(message: Message) -> None:
            nonlocal drain, held
            if message["type"] == "http.response.start" and not body_done:
                drain = self._worth_draining(message["status"], declared, received)
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            elif (
                drain
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
            ):
                # All of the answer goes out now; its end waits until the body is drained.
                held = message
                message = {**message, "more_body": True}
            await send(message)

        await self.app(scope, tracking_receive, early_send)
        if held is not None:
            if not body_done:
                await self._drain(receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _worth_draining(self, status: int, declared: int | None, received: int) -> bool:
        if status in _NOT_DRAINED or self._drain_bytes == 0 or self._drain_timeout == 0:
            return False
        return declared is None or declared - received <= self._drain_bytes

    async def _drain(self, receive: Receive) -> None:
        drained = 0
        try:
            async with asyncio.timeout(self._drain_timeout):
                while drained <= self._drain_bytes:
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    drained += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            return


def _declared_length(scope: Scope) -> int | None:
    """The body's declared length; None when chunked or unknown (assume a body)."""
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
        if name == b"transfer-encoding":
            chunked = True
    return None if chunked else 0
