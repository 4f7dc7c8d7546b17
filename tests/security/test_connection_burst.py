"""A burst of new connections reaches a busy server's app at once, not after seconds.

Under uvloop, `wasmwiz serve` took new connections off the listening socket at about 130
a second while it was busy: 200 clients connecting at once left most of them in the
kernel's accept queue, their first requests answered after up to 3 s while the rest took
0.3 s (docs/performance.md, bench/event_loop.py). The test keeps a real server process
busy with 50 connections running hello-world, opens 150 more at once, and reads the
listening socket's accept queue from /proc/net/tcp while their first requests are in.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fixtures.app import create_account, start_server_process
from tests.security.checks import HELLO
from wasmwiz.persistence import Database
from wasmwiz.persistence.migrate import upgrade_async
from wasmwiz.persistence.models import SubscriptionTier

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BUSY_CONNECTIONS = 50
BURST_CONNECTIONS = 150
LOTS = 1_000_000_000
# The accept queue as read 0.5 s and later into the burst (the burst is usually all
# answered by then, leaving no reading to check). asyncio's loop takes every
# waiting connection in the callback that sees the first one, once the turn it is in
# ends: a busy turn can take a fifth of a second (one gate read 26 waiting until 0.16 s,
# then 0). uvloop took them at about 130 a second, so 110-170 of the 150 still waited
# well past 0.5 s.
SETTLE_SECONDS = 0.5
MOST_WAITING = 20


async def _unlimited_key(database_url: str) -> str:
    """A key whose tier admits everything, so what is measured is the transport."""
    tier = f"burst-{uuid.uuid4().hex[:8]}"
    database = Database(database_url)
    try:
        async with database.session() as session:
            session.add(
                SubscriptionTier(
                    name=tier,
                    requests_per_minute=LOTS,
                    requests_per_day=LOTS,
                    max_concurrent_executions=LOTS,
                    max_fuel=None,
                )
            )
            await session.commit()
    finally:
        await database.dispose()
    return (await create_account(database_url, tier=tier)).api_key


def _request(host: str, key: str) -> bytes:
    boundary = "burst-boundary"
    body = (
        (
            f'--{boundary}\r\ncontent-disposition: form-data; name="wasm"; filename="hello.wat"\r\n'
            f"content-type: application/octet-stream\r\n\r\n"
        ).encode()
        + HELLO
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST /api/v1/execute HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\n"
        f"content-type: multipart/form-data; boundary={boundary}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return head.split(b" ", 2)[1]


def accept_queue(port: int) -> int:
    """Connections the kernel holds for the listening socket on `port`, not yet accepted."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "0A":  # LISTEN; rx_queue is the backlog
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no listening socket on port {port}")


async def test_a_burst_of_connections_is_accepted_while_the_server_is_busy(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    await upgrade_async(url)
    key = await _unlimited_key(url)
    server = await asyncio.to_thread(
        start_server_process, tmp_path / "var", url, max_queued_executions="256"
    )
    parts = urlsplit(server.url)
    assert parts.hostname is not None
    assert parts.port is not None
    host, port = parts.hostname, parts.port
    request = _request(parts.netloc, key)
    stop = asyncio.Event()
    busy_answers: list[bytes] = []

    async def keep_busy() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not stop.is_set():
                writer.write(request)
                busy_answers.append(await _answer(reader))
        finally:
            writer.close()

    async def first_answer() -> tuple[bytes, float]:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            return await _answer(reader), time.perf_counter() - started
        finally:
            writer.close()

    try:
        busy = [asyncio.create_task(keep_busy()) for _ in range(BUSY_CONNECTIONS)]
        await asyncio.sleep(1.5)  # every busy connection has its requests going
        burst_started = time.perf_counter()
        burst = asyncio.gather(*(first_answer() for _ in range(BURST_CONNECTIONS)))
        queue = []
        while not burst.done() and time.perf_counter() - burst_started < 10:
            elapsed = time.perf_counter() - burst_started
            queue.append((round(elapsed, 2), accept_queue(port)))
            await asyncio.sleep(0.02)
        answers = await burst
        stop.set()
        await asyncio.gather(*busy)
    finally:
        server.stop()

    statuses = {status for status, _ in answers} | set(busy_answers)
    slowest = max(seconds for _, seconds in answers)
    print(
        f"accept queue (seconds, waiting): {queue[::5]}; slowest first answer "
        f"{slowest * 1000:.0f} ms; {len(busy_answers)} answers on the busy ones"
    )
    assert statuses == {b"200"}
    # By SETTLE_SECONDS every burst connection has had its answer, or few still wait.
    settled = [waiting for elapsed, waiting in queue if elapsed >= SETTLE_SECONDS]
    assert max(settled, default=0) <= MOST_WAITING
