"""The bounded httptools protocol, in this process: uvicorn on a loopback port, raw sockets.

tests/security/test_abuse_transport.py attacks a `wasmwiz serve` process and measures
what each attack costs; these drive every refusal and the way through on a tiny app, with
limits small enough that each test takes a moment.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import uvicorn

from tests.fixtures.raw_http import read_response
from wasmwiz.http_common.transport import BoundedHttpToolsProtocol, TransportLimits

KiB = 1024
LIMITS = TransportLimits(
    max_head_bytes=4 * KiB,
    max_header_count=10,
    head_timeout=5.0,
    max_connections=8,
    drain_bytes=64 * KiB,
    drain_timeout=5.0,
)


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers `METHOD PATH BODY-LENGTH`; refuses a WebSocket handshake. On /digest it
    reads slowly and answers `SHA256-HEX MESSAGES`: the body as the app received it."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close"})
        return
    length, more, messages = 0, True, 0
    digest = hashlib.sha256()
    while more:
        message = await receive()
        messages += 1
        length += len(message.get("body", b""))
        digest.update(message.get("body", b""))
        more = message.get("more_body", False)
        if scope["path"] == "/digest":
            await asyncio.sleep(0.005)  # pieces pile up in the protocol meanwhile
    text = f"{scope['method']} {scope['path']} {length}".encode()
    if scope["path"] == "/digest":
        text = f"{digest.hexdigest()} {messages}".encode()
    headers = [(b"content-length", str(len(text)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": text})


@dataclass
class Server:
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start(limits: TransportLimits) -> Server:
    # A subclass per server: its limits are its own, the class `wasmwiz serve` uses is
    # left as it was.
    class Limited(BoundedHttpToolsProtocol):
        pass

    Limited.configure(limits)
    config = uvicorn.Config(
        echo_app,
        host="127.0.0.1",
        port=0,
        http=Limited,
        ws="none",  # as `wasmwiz serve` runs it
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.005)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return Server(port, server, thread)


ServerFactory = Callable[..., Server]


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """Start a server with `LIMITS` changed by the keywords given; all stop afterwards."""
    servers: list[Server] = []

    def make(**changes: Any) -> Server:
        servers.append(start(replace(LIMITS, **changes)))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def closed(sock: socket.socket) -> bool:
    """The server closed the connection (after whatever it answered)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def head(lines: int = 0, *, method: str = "GET", extra: bytes = b"") -> bytes:
    pad = b"".join(b"x-pad-%d: %s\r\n" % (number, b"a" * 20) for number in range(lines))
    return f"{method} /echo HTTP/1.1\r\nhost: test\r\n".encode() + pad + extra


def test_a_request_passes_through_and_the_next_one_too(serve: ServerFactory) -> None:
    server = serve()
    body = b"b" * (3 * LIMITS.max_head_bytes)
    with server.connect() as sock:
        # Head and body in one write: the head ends inside the bytes counted against the
        # limit, the body after it is fed unbounded.
        sock.sendall(head(extra=b"content-length: %d\r\n\r\n" % len(body), method="POST") + body)
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200 "), first[:80]
        assert first.endswith(b"POST /echo %d" % len(body))
        # Keep-alive: the next head is bounded afresh (its timer starts with its first byte).
        sock.sendall(head(LIMITS.max_header_count - 1) + b"\r\n")
        second = read_response(sock)
        assert second.endswith(b"GET /echo 0"), second[-80:]
        # A body sent once the head was answered (100 Continue) arrives on its own.
        expect = b"content-length: %d\r\nexpect: 100-continue\r\n\r\n" % len(body)
        sock.sendall(head(extra=expect, method="PUT"))
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        third = read_response(sock)
        assert third.endswith(b"PUT /echo %d" % len(body)), third[-80:]


@pytest.mark.parametrize("pieces", [1, 64])
def test_a_body_reaches_the_app_byte_for_byte(serve: ServerFactory, pieces: int) -> None:
    """The protocol hands a piece on as httptools made it when nothing is waiting, and
    appends to what is waiting when the app lags: both deliver the body unchanged."""
    server = serve()
    body = os.urandom(1024 * KiB)
    size = len(body) // pieces
    with server.connect() as sock:
        sock.sendall(
            b"POST /digest HTTP/1.1\r\nhost: test\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        for start in range(0, len(body), size):
            sock.sendall(body[start : start + size])
            if pieces > 1:
                time.sleep(0.001)
        answer = read_response(sock)
    digest, messages = answer.rsplit(b"\r\n\r\n", 1)[1].split()
    assert digest == hashlib.sha256(body).hexdigest().encode()
    if pieces > 1:
        # The slow app took fewer messages than there were pieces: some were joined.
        assert int(messages) < pieces


def test_a_head_over_the_size_limit_is_refused_with_431(serve: ServerFactory) -> None:
    server = serve(max_header_count=1000)
    for chunks in ([head(200) + b"\r\n"], [head(1)] + [b"x-more: %s\r\n" % (b"a" * 500)] * 10):
        with server.connect() as sock:
            for chunk in chunks:
                sock.sendall(chunk)
            reply = read_response(sock)
        assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), reply[:80]
        assert b"connection: close\r\n" in reply
        assert b'"code":"header_too_large"' in reply
        assert b"larger than 4096 bytes or has more than 1000 header lines" in reply


def test_too_many_header_lines_are_refused_with_431(serve: ServerFactory) -> None:
    server = serve()
    # One line too many: as a head of its own, and as the start of a write that is
    # longer than the head may be.
    over = head(LIMITS.max_header_count)
    for payload in (over + b"\r\n", over + b"x" * LIMITS.max_head_bytes):
        with server.connect() as sock:
            sock.sendall(payload)
            reply = read_response(sock)
        assert reply.startswith(b"HTTP/1.1 431 "), reply[:80]
        assert b'"code":"header_too_large"' in reply


def test_a_head_that_does_not_arrive_in_time_is_refused_with_408(serve: ServerFactory) -> None:
    server = serve(head_timeout=0.3)
    with server.connect() as silent, server.connect() as partial:
        partial.sendall(b"GET /echo HTTP/1.1\r\nhost: te")
        for sock in (silent, partial):
            reply = read_response(sock)
            assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), reply[:80]
            assert b'"code":"request_timeout"' in reply
            assert b"did not arrive within 0.3 seconds" in reply
            assert closed(sock)  # at once: there is no body to drain


def test_a_refused_heads_body_is_read_and_dropped_until_the_drain_ends(
    serve: ServerFactory,
) -> None:
    server = serve(drain_timeout=0.3)
    refused = head(LIMITS.max_header_count) + b"\r\n"
    with server.connect() as sock:
        # A client that writes everything before it reads still gets its answer...
        sock.sendall(refused + b"b" * (LIMITS.drain_bytes // 2))
        assert read_response(sock).startswith(b"HTTP/1.1 431 ")
        # ...and the connection closes once the drain's time is up.
        assert closed(sock)
    with server.connect() as sock:
        sock.sendall(refused)
        assert read_response(sock).startswith(b"HTTP/1.1 431 ")
        try:  # past the drain's bytes the server stops reading and closes
            for _ in range(4):
                sock.sendall(b"b" * LIMITS.drain_bytes)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed(sock)


@pytest.mark.parametrize("changes", [{"drain_bytes": 0}, {"drain_timeout": 0}])
def test_without_a_drain_a_refusal_closes_at_once(
    serve: ServerFactory, changes: dict[str, int]
) -> None:
    server = serve(**changes)
    with server.connect() as sock:
        sock.sendall(head(LIMITS.max_header_count) + b"\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 431 ")
        assert closed(sock)


def test_a_connection_over_the_limit_is_refused_with_503(serve: ServerFactory) -> None:
    server = serve(max_connections=2)
    with server.connect() as first, server.connect() as second:
        for sock in (first, second):  # answered: the server holds both
            sock.sendall(head() + b"\r\n")
            assert read_response(sock).endswith(b"GET /echo 0")
        with server.connect() as third:
            reply = read_response(third)
            assert closed(third)
        assert reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), reply[:80]
        assert b"retry-after: 1\r\n" in reply
        assert b'"code":"server_busy"' in reply
        first.sendall(head() + b"\r\n")  # the two held are still served
        assert read_response(first).endswith(b"GET /echo 0")
    with server.connect() as again:  # and once they are gone, others are
        again.sendall(head() + b"\r\n")
        assert read_response(again).endswith(b"GET /echo 0")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x00\x01\x02 / HTTP/1.1\r\n\r\n",  # the parser's own error
        b"GET http://[::1 HTTP/1.1\r\nhost: test\r\n\r\n",  # uvicorn's, in a callback
    ],
)
def test_a_malformed_request_is_a_400(serve: ServerFactory, request_bytes: bytes) -> None:
    server = serve()
    with server.connect() as sock:
        sock.sendall(request_bytes)
        reply = read_response(sock)
        assert closed(sock)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply[:80]
    assert reply.endswith(b"Invalid HTTP request received.")


def test_upgrade_requests_reach_the_app_as_plain_requests(
    serve: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve()
    with server.connect() as sock:  # an upgrade uvicorn does not speak: a plain request
        sock.sendall(head(extra=b"connection: upgrade\r\nupgrade: h2c\r\n\r\n"))
        assert read_response(sock).endswith(b"GET /echo 0")
    with server.connect() as sock:  # a WebSocket handshake: no WebSocket is spoken
        handshake = (
            b"connection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n"
            b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        sock.sendall(head(extra=handshake))
        reply = read_response(sock)
        assert reply.startswith(b"HTTP/1.1 200 "), reply[:80]
        assert reply.endswith(b"GET /echo 0")
    assert not [r for r in caplog.records if "upgrade" in r.getMessage().lower()]
