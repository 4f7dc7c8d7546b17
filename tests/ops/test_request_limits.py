"""A client that trickles its body is cut off while everyone else is served."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx

from tests.fixtures.app import Account, ServerFactory


def _open(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def test_a_slow_body_is_cut_off_and_other_requests_are_served(
    server_factory: ServerFactory, ops_account: Account
) -> None:
    server = server_factory(request_body_timeout=1.5)
    slow = _open(server.url)
    try:
        slow.sendall(
            b"POST /api/v1/execute HTTP/1.1\r\nHost: test\r\n"
            + f"Authorization: Bearer {ops_account.api_key}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 100000\r\n\r\n--x\r\n"
        )
        started = time.monotonic()
        served = 0
        # While the slow client holds its request open, others get their answers.
        while time.monotonic() - started < 1.0:
            assert httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200
            served += 1
        assert served > 0
        reply = b""
        while chunk := slow.recv(65536):  # the server closes the connection after replying
            reply += chunk
    finally:
        slow.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert b'"code":"request_timeout"' in body
    assert b"connection: close" in head.lower()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(max_request_body_size=1024)
    sock = _open(server.url)
    try:
        sock.sendall(
            b"POST /api/v1/execute HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 5000000\r\n\r\n"
        )
        reply = sock.recv(65536)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:80]
    assert b'"code":"request_too_large"' in reply
