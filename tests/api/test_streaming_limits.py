"""Oversized bodies are refused while they stream in, never buffered whole."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from tests.fixtures.app import Account, LiveServer, ServerFactory
from tests.fixtures.raw_http import read_response

ONE_GIB = 1024**3
MiB = 1024 * 1024


def _connect(server: LiveServer) -> socket.socket:
    address = urlsplit(server.url)
    assert address.hostname
    assert address.port
    return socket.create_connection((address.hostname, address.port), timeout=10)


def _request_head(account: Account, extra: str) -> bytes:
    return (
        "POST /api/v1/execute HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {account.api_key}\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"{extra}\r\n"
    ).encode()


def _read_status(sock: socket.socket) -> tuple[int, bytes]:
    """The whole answer: its head and body may arrive in separate segments."""
    data = read_response(sock)
    status = int(data.split(b" ", 2)[1])
    return status, data


@pytest.mark.anyio
async def test_declared_gigabyte_is_refused_before_any_body(
    live_server: LiveServer, account: Account
) -> None:
    with _connect(live_server) as sock:
        sock.sendall(_request_head(account, f"Content-Length: {ONE_GIB}\r\n"))
        status, response = _read_status(sock)
    assert status == 413
    assert b"request_too_large" in response


@pytest.mark.anyio
async def test_chunked_gigabyte_is_cut_off_at_the_limit(
    server_factory: ServerFactory, account: Account
) -> None:
    # After its 413 the server reads and drops up to EARLY_ANSWER_DRAIN_BYTES more, so
    # that clients which write before they read still see the answer; then it closes.
    live_server = server_factory(early_answer_drain_bytes=16 * MiB)
    part_head = b'--XyZ\r\nContent-Disposition: form-data; name="wasm"; filename="big.wasm"\r\n\r\n'
    chunk = b"\0" * (1024 * 1024)
    sent = 0
    with _connect(live_server) as sock:
        sock.sendall(_request_head(account, "Transfer-Encoding: chunked\r\n"))
        sock.sendall(b"%x\r\n%s\r\n" % (len(part_head), part_head))
        try:
            while sent < ONE_GIB:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, response = _read_status(sock)
    assert status == 413
    assert b"wasm_too_large" in response
    # Refused near the 10 MiB module limit plus the drain, not after a gigabyte.
    assert sent < 64 * MiB
