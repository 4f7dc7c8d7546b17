"""Admission before the body: a key over its limits is refused before its upload is read.

Against a real `wasmwiz serve` process. What it costs the server is measured as what the
client manages to write before the refusal arrives: the client's send buffer is pinned
small, so once the server stops reading, the client stops being able to write. A server
that reads the body first takes all 9 MB before it answers; one that admits first answers
after the head, having taken at most what uvicorn and the kernel buffer for it.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.wat import HELLO
from tests.fixtures.app import Account, ServerProcess, create_account, start_server_process
from tests.fixtures.database import run_outside_loop
from tests.ops.metrics_text import sample
from tests.ops.process import SLEEP_2S
from wasmwiz.persistence.migrate import upgrade

MiB = 1024 * 1024
UPLOAD_BYTES = 9_000_000
# What may be written before a refusal: the client's pinned send buffer (64 KiB), the
# server's socket receive buffer (128 KiB to start with, growing only as it is read),
# uvicorn's 64 KiB read-ahead, with room to spare. Far below the 9 MB a read would take.
PREFIX_BOUND = 1 * MiB
_CHUNK = 64 * 1024
_BOUNDARY = "wasmwiz-abuse-boundary"


@dataclass
class Upload:
    """How much of the body the client wrote before the answer arrived, and the answer."""

    body_bytes: int
    written_before_answer: int
    status: int
    headers: dict[str, str]
    problem: dict[str, object]


def upload_until_answered(url: str, api_key: str, size: int) -> Upload:
    """POST a `size`-byte module over a raw socket, writing until the answer is readable."""
    parts = urlsplit(url)
    opening = (
        f"--{_BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="wasm"; filename="big.wasm"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    closing = f"\r\n--{_BOUNDARY}--\r\n".encode()
    body_bytes = len(opening) + size + len(closing)
    head = (
        f"POST /api/v1/execute HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        f"Content-Type: multipart/form-data; boundary={_BOUNDARY}\r\n"
        f"Content-Length: {body_bytes}\r\nConnection: close\r\n\r\n"
    ).encode()
    # 0xff filler: not a module, so a server that reads it all refuses it cheaply.
    filler = b"\xff" * _CHUNK

    def pieces() -> list[bytes]:
        out = [opening]
        whole, rest = divmod(size, _CHUNK)
        out += [filler] * whole + [filler[:rest], closing]
        return out

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _CHUNK)
    sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
    try:
        sock.sendall(head)
        sock.setblocking(False)
        queue = pieces()
        pending = memoryview(queue.pop(0))
        written = 0
        received = b""
        deadline = time.monotonic() + 60
        while not received:
            assert time.monotonic() < deadline, "no answer within 60 s"
            wanted = [sock] if (pending or queue) else []
            readable, writable, _ = select.select([sock], wanted, [], 1.0)
            if readable:
                received = sock.recv(65536)
                assert received, "the server closed the connection without an answer"
                break
            if writable:
                if not pending:
                    pending = memoryview(queue.pop(0))
                try:
                    sent = sock.send(pending)
                except BlockingIOError:
                    continue
                written += sent
                pending = pending[sent:]
        written_before_answer = written
        sock.setblocking(True)
        sock.settimeout(30)
        status, headers, problem = _read_response(sock, received)
    finally:
        sock.close()
    return Upload(body_bytes, written_before_answer, status, headers, problem)


def _read_response(sock: socket.socket, received: bytes) -> tuple[int, dict[str, str], dict]:
    while b"\r\n\r\n" not in received:
        more = sock.recv(65536)
        assert more, "the connection closed inside the response head"
        received += more
    raw_head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, value in (line.split(":", 1) for line in lines)
    }
    length = int(headers["content-length"])
    while len(body) < length:
        more = sock.recv(65536)
        assert more, "the connection closed inside the response body"
        body += more
    return int(status_line.split()[1]), headers, json.loads(body[:length])


@pytest.fixture
def server_and_key(tmp_path: Path) -> tuple[ServerProcess, Account, Account]:
    url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    run_outside_loop(lambda: upgrade(url))

    async def accounts() -> tuple[Account, Account]:
        return await create_account(url, tier="free"), await create_account(url, tier="pro")

    free, pro = run_outside_loop(lambda: asyncio.run(accounts()))
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    server = start_server_process(var_dir, url, execution_timeout="5")
    yield server, free, pro
    server.stop()


def _in_flight(url: str) -> float:
    return sample(httpx.get(f"{url}/metrics", timeout=10).text, "wasmwiz_executions_in_flight")


def test_a_refused_key_is_answered_before_its_9_mb_upload_is_read(
    server_and_key: tuple[ServerProcess, Account, Account],
) -> None:
    server, free, pro = server_and_key

    # The measure can tell: an admitted key's upload is read whole before its refusal.
    admitted = upload_until_answered(server.url, pro.api_key, UPLOAD_BYTES)
    assert admitted.status == 422, admitted.problem
    assert admitted.written_before_answer == admitted.body_bytes

    # At its concurrency cap (the free tier runs 2 at once): two guests asleep.
    sleepers = [
        threading.Thread(
            target=lambda: httpx.post(
                f"{server.url}/api/v1/execute",
                headers=free.headers,
                files={"wasm": ("sleep.wat", SLEEP_2S.encode())},
                timeout=30,
            )
        )
        for _ in range(2)
    ]
    for sleeper in sleepers:
        sleeper.start()
    deadline = time.monotonic() + 10
    while _in_flight(server.url) < 2:
        assert time.monotonic() < deadline, "the sleeping guests did not start"
        time.sleep(0.02)
    capped = upload_until_answered(server.url, free.api_key, UPLOAD_BYTES)
    for sleeper in sleepers:
        sleeper.join()
    assert capped.status == 429, capped.problem
    assert capped.problem["code"] == "too_many_concurrent"
    assert capped.written_before_answer <= PREFIX_BOUND, capped.written_before_answer

    # Over its rate (10 a minute): spend what is left, then upload.
    for _ in range(12):
        response = httpx.post(
            f"{server.url}/api/v1/execute",
            headers=free.headers,
            files={"wasm": ("hello.wat", HELLO.encode())},
            timeout=30,
        )
        if response.status_code == 429:
            break
        assert response.status_code == 200, response.text
    assert response.json()["code"] == "rate_limited"
    limited = upload_until_answered(server.url, free.api_key, UPLOAD_BYTES)
    assert limited.status == 429, limited.problem
    assert limited.problem["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.written_before_answer <= PREFIX_BOUND, limited.written_before_answer

    # The refusals cost the server nothing lasting: it still runs another key's module.
    ok = httpx.post(
        f"{server.url}/api/v1/execute",
        headers=pro.headers,
        files={"wasm": ("hello.wat", HELLO.encode())},
        timeout=30,
    )
    assert ok.status_code == 200, ok.text
