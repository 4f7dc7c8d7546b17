"""Fifty hostile runs at once: hello-world keeps working and memory returns to its baseline.

The service runs as its own process (`wasmwiz serve`), so the RSS measured is the
server's alone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import Account, create_account, start_server_process
from tests.security import guests
from tests.security.checks import HELLO
from wasmwiz.persistence.migrate import upgrade_async

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
HOSTILE_MIX: list[tuple[bytes, int, str]] = [
    (guests.INFINITE_LOOP.encode(), 200, "timeout"),
    (guests.START_LOOP.encode(), 200, "timeout"),
    (guests.MEMORY_GROW_LOOP.encode(), 200, "memory_limit"),
    (guests.TABLE_GROW_LOOP.encode(), 200, "trap"),
    (guests.RECURSION.encode(), 200, "stack_overflow"),
    (guests.writing_forever(1).encode(), 200, "output_limit"),
    (guests.writing_forever(2).encode(), 200, "output_limit"),
    (guests.sleeping(absolute=False).encode(), 200, "timeout"),
    (guests.IMPORTS_ENV_FOO.encode(), 422, "unsupported_import"),
    (guests.MANY_FUNCTIONS, 422, "too_many_functions"),
]
# Allocator noise (per-thread malloc arenas keep freed output buffers) after four more
# identical storms; a leak of even 1 MiB a run would be 200 MiB. Seen here: the RSS
# after a storm moves by up to ±40 MiB from one storm to the next with no leak at all.
RSS_MARGIN = 64 * MiB


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def hostile(
    client: httpx.AsyncClient, account: Account, case: tuple[bytes, int, str]
) -> None:
    wasm, status, expected = case
    response = await client.post(
        "/api/v1/execute", headers=account.headers, files={"wasm": ("h.wasm", wasm)}
    )
    assert response.status_code == status, response.text
    assert response.json()["status" if status == 200 else "code"] == expected


async def hello(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        "/api/v1/execute", headers=account.headers, files={"wasm": ("hello.wat", HELLO)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "Hello, WasmWiz!\n"


async def storm(client: httpx.AsyncClient, accounts: list[Account]) -> int:
    """50 hostile runs at once (two keys), and hello-world from a third until they end."""
    runs = asyncio.gather(
        *(hostile(client, accounts[i % 2], HOSTILE_MIX[i % len(HOSTILE_MIX)]) for i in range(50))
    )
    hellos = 0
    while not runs.done():
        await hello(client, accounts[2])
        hellos += 1
        # Paced: the point is that hello keeps being answered, not how often; unpaced,
        # four storms' hellos add up to more than the key's 500 a minute.
        await asyncio.sleep(0.05)
    await runs
    await hello(client, accounts[2])
    return hellos


@pytest.mark.slow
async def test_fifty_concurrent_hostile_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    await upgrade_async(url)
    accounts = [await create_account(url) for _ in range(3)]
    server = await asyncio.to_thread(
        start_server_process,
        tmp_path / "var",
        url,
        memory_limit=str(32 * MiB),
        max_concurrent_executions="8",
        max_queued_executions="256",
        compile_timeout="2",
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            # Two storms warm up: modules compiled and cached, allocator arenas and worker
            # threads grown to their working size. The larger RSS after either is the
            # baseline (one sample alone may catch the allocator at a low moment).
            warm = []
            for _ in range(2):
                await storm(client, accounts)
                warm.append(rss_bytes(server.process.pid))
            baseline = max(warm)
            hellos = [await storm(client, accounts) for _ in range(4)]
            after = rss_bytes(server.process.pid)
    finally:
        server.stop()

    print(f"RSS baseline {baseline / MiB:.0f} MiB, after {after / MiB:.0f} MiB, hellos {hellos}")
    assert min(hellos) >= 1
    assert after <= baseline + RSS_MARGIN
