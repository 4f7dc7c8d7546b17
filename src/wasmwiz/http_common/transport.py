"""Bounds on what a connection costs before the app sees a request: head size, time, count.

uvicorn runs httptools (llhttp) when it is installed (as it is here), and neither bounds a request
head: `h11_max_incomplete_event_size` reaches only the h11 parser, and httptools keeps
every header line it is sent. This protocol counts the head's bytes as they arrive and
refuses it with 431 past `MAX_HEADER_SIZE` (or past `MAX_HEADER_COUNT` lines), cuts a head
that has not arrived within `HEADER_TIMEOUT`, and refuses a connection over
`MAX_CONNECTIONS` with 503 when it is accepted. Keeping httptools rather than moving to h11
is measured in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from wasmwiz.problem_codes import ProblemCode

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True, slots=True)
class TransportLimits:
    max_head_bytes: int = 64 * KiB
    max_header_count: int = 100
    head_timeout: float = 10.0
    max_connections: int = 1024
    # A refusal's leftover request bytes read and thrown away, so the client sees it.
    drain_bytes: int = 128 * MiB
    drain_timeout: float = 10.0


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing an over-long head."""


def problem_bytes(
    status: int, code: str, detail: str, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """A complete `Connection: close` HTTP/1.1 problem-details response, for the transport."""
    phrase = HTTPStatus(status).phrase
    body = json.dumps(
        {"type": "about:blank", "title": phrase, "status": status, "detail": detail, "code": code},
        separators=(",", ":"),
    ).encode()
    lines = [
        f"HTTP/1.1 {status} {phrase}",
        "content-type: application/problem+json",
        f"content-length: {len(body)}",
        "connection: close",
        "x-content-type-options: nosniff",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded head and a bounded number of connections.

    `limits` is set per process by `configure` before the server starts accepting: a
    worker process imports this class afresh and builds its app (which configures it)
    before its first connection.
    """

    limits: ClassVar[TransportLimits] = TransportLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._discarding = False
        self._discarded = 0

    @classmethod
    def configure(cls, limits: TransportLimits) -> None:
        cls.limits = limits

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # Counted before this one is added: the cap is on connections held at once.
        over = len(self.connections) >= self.limits.max_connections
        super().connection_made(transport)
        if over:
            self._refuse(
                problem_bytes(
                    503,
                    ProblemCode.SERVER_BUSY,
                    "The server holds as many connections as it accepts; retry shortly.",
                    (("retry-after", "1"),),
                ),
                drain=False,
            )
            return
        # A connection that never sends a byte is cut like one whose head is slow.
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            self._discarded += len(data)
            if self._discarded > self.limits.drain_bytes:
                self.transport.close()
            return
        if not self._in_head:
            self._feed(data)
            return
        if self._head_timer is None:
            self._arm_head_timer()
        remaining = self.limits.max_head_bytes - self._head_bytes
        if len(data) <= remaining:
            self._head_bytes += len(data)
            self._feed(data)
            return
        # Feed only what fits: if the head ends inside it, the rest is body (or the next
        # request) and is fed unbounded here; if not, the head is too large.
        view = memoryview(data)
        self._head_bytes += remaining
        self._feed(view[:remaining])
        if self.transport.is_closing() or self._discarding:
            return
        if self._in_head:
            self._refuse_head()
            return
        self._feed(view[remaining:])

    def _feed(self, data: bytes | memoryview) -> None:
        """uvicorn's `data_received`, told apart from it by an over-long head's 431."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadRefused):
                self._refuse_head()
            else:
                self._bad_request()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            self._bad_request()

    def _unsupported_upgrade_warning(self) -> None:
        # WasmWiz speaks no WebSocket (`wasmwiz serve` passes ws="none"): an upgrade
        # request is served as the plain request it also is, which is not worth a log
        # line, let alone uvicorn's advice to install a WebSocket library.
        pass

    def _bad_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            raise _HeadRefused
        super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        # uvicorn appends each piece to the cycle's bytearray, and its `receive` copies that
        # into bytes: two copies of every body byte on the event loop's thread. A piece that
        # finds the buffer empty (the app keeps up, as it does) is kept as the bytes object
        # httptools made, which `bytes()` in `receive` hands on without copying.
        cycle = self.cycle
        if cycle.body or cycle.response_complete or self.parser.should_upgrade():
            super().on_body(body)
            return
        cycle.body = body  # type: ignore[assignment]  # read only through bytes()
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next head starts now; its timer starts with its first byte.
        self._in_head = True
        self._head_bytes = 0

    # Refusals

    def _refuse_head(self) -> None:
        self._refuse(
            problem_bytes(
                431,
                ProblemCode.HEADER_TOO_LARGE,
                f"The request head is larger than {self.limits.max_head_bytes} bytes or "
                f"has more than {self.limits.max_header_count} header lines.",
            )
        )

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing() and not self._discarding:
            self._refuse(
                problem_bytes(
                    408,
                    ProblemCode.REQUEST_TIMEOUT,
                    f"The request head did not arrive within {self.limits.head_timeout:g} seconds.",
                ),
                drain=False,
            )

    def _refuse(self, response: bytes, *, drain: bool = True) -> None:
        """Answer and close; with `drain`, first read and drop what the client still sends
        (bounded), so that a client that writes before it reads sees the answer."""
        self._cancel_head_timer()
        self._in_head = False
        if self.transport.is_closing():
            return
        self.transport.write(response)
        if not drain or self.limits.drain_bytes == 0 or self.limits.drain_timeout == 0:
            self.transport.close()
            return
        self._discarding = True
        self.flow.resume_reading()
        self.loop.call_later(self.limits.drain_timeout, self.transport.close)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._on_head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
