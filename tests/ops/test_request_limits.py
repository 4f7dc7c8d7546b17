"""Body limits: a deadline, a limit by route, and one memory budget for all bodies."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.app import Account, ServerFactory
from tests.fixtures.raw_http import read_response
from wasmwiz.errors import ServiceUnavailable
from wasmwiz.http_common.memory_budget import MemoryBudget

KiB = 1024
MiB = 1024 * KiB


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
        reply = read_response(sock)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:80]
    assert b'"code":"request_too_large"' in reply
    assert b"connection: close" in reply.lower()


@pytest.mark.parametrize("path", ["/login", "/signup", "/api/v1/keys", "/generate-key"])
def test_form_and_json_routes_take_the_small_limit(
    server_factory: ServerFactory, ops_account: Account, path: str
) -> None:
    server = server_factory(max_form_body_size=16 * KiB)
    body = b"email=a%40example.com&password=" + b"x" * (32 * KiB)
    chunked = iter([body[: 8 * KiB], body[8 * KiB :]])  # no Content-Length: read, then refused
    for content in (body, chunked):
        response = httpx.post(
            f"{server.url}{path}",
            content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded", **ops_account.headers},
        )
        assert response.status_code == 413, (path, response.text[:200])
        assert response.json()["code"] == "request_too_large"


def test_upload_routes_take_the_module_limit(
    server_factory: ServerFactory, ops_account: Account
) -> None:
    server = server_factory(max_form_body_size=16 * KiB)
    response = httpx.post(
        f"{server.url}/api/v1/execute",
        headers=ops_account.headers,
        files={"wasm": ("big.wasm", b"\0asm\1\0\0\0" + b"\0" * (200 * KiB))},
    )
    # Read whole and refused for what it is, not for its size.
    assert response.status_code == 422, response.text[:200]


def test_a_body_over_the_memory_budget_waits_then_is_refused(
    server_factory: ServerFactory, ops_account: Account
) -> None:
    server = server_factory(request_memory_budget=MiB, request_memory_wait=0.3)
    holder = _open(server.url)
    try:
        # Declares 400 KiB (charged twice: 800 KiB of the 1 MiB) and sends only a start.
        holder.sendall(
            b"POST /api/v1/execute HTTP/1.1\r\nHost: test\r\n"
            + f"Authorization: Bearer {ops_account.api_key}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=x\r\n"
            + f"Content-Length: {400 * KiB}\r\n\r\n--x\r\n".encode()
        )
        time.sleep(0.3)
        started = time.monotonic()
        refused = httpx.post(
            f"{server.url}/api/v1/execute",
            headers=ops_account.headers,
            files={"wasm": ("m.wasm", b"\0" * (200 * KiB))},
        )
        waited = time.monotonic() - started
        small = httpx.post(f"{server.url}/login", data={"email": "a@example.com"})
    finally:
        holder.close()
    assert refused.status_code == 503, refused.text[:200]
    assert refused.json()["code"] == "server_busy"
    assert refused.headers["retry-after"] == "1"
    assert 0.25 <= waited < 5
    # A small body still fits in what is left.
    assert small.status_code != 503


@pytest.mark.anyio
async def test_the_budget_serves_waiters_in_order_and_trims_when_empty() -> None:
    trims: list[int] = []
    budget = MemoryBudget(100, wait=5, trim=lambda: trims.append(budget.held))
    await budget.acquire(60)
    order: list[str] = []

    async def take(name: str, size: int) -> None:
        await budget.acquire(size)
        order.append(name)

    first = asyncio.create_task(take("first", 50))
    await asyncio.sleep(0)
    second = asyncio.create_task(take("second", 10))  # would fit, but waits its turn
    await asyncio.sleep(0.05)
    assert order == []
    budget.release(60)
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert budget.held == 60
    budget.release(50)
    budget.release(10)
    await asyncio.sleep(0.8)  # the trim runs shortly after the budget empties
    assert trims == []  # 120 bytes came and went: too little to be worth a trim
    big = MemoryBudget(64 * MiB, wait=5, trim=lambda: trims.append(big.held))
    await big.acquire(32 * MiB)
    big.release(32 * MiB)
    await asyncio.sleep(0.8)
    assert trims == [0]


@pytest.mark.anyio
async def test_a_request_larger_than_the_budget_is_let_in_alone() -> None:
    budget = MemoryBudget(100, wait=0.05)
    await budget.acquire(500)
    with pytest.raises(ServiceUnavailable) as refused:
        await budget.acquire(1)
    assert refused.value.code == "server_busy"
    assert budget.held == 500
    budget.release(500)
    await budget.acquire(1)
