"""One account compiling fresh large modules in a loop holds neither the compilers nor others.

Against a real server process: compiles that no cache holds take turns across accounts
over the compile workers, and each account's compile CPU seconds are charged to a
budget per minute (by tier) past which it gets 429 `compile_budget_exceeded`.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from pathlib import Path

import httpx
import pytest
from bench.modules import big_module

from tests.api.test_rate_limits import set_tier
from tests.fixtures.app import Account, create_account, start_server_process
from wasmwiz.persistence.migrate import upgrade_async

pytestmark = pytest.mark.anyio


def fresh(binary: bytes, n: int) -> bytes:
    """`binary` with a custom section appended: the same compile work, another digest."""
    name = f"fresh{n}".encode()
    payload = bytes([len(name)]) + name
    return binary + bytes([0, len(payload)]) + payload


def small_module(n: int) -> bytes:
    """A fresh small module each n: a different constant, so a different digest."""
    return f"""(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "small\\n")
  (global i32 (i32.const {n}))
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))""".encode()


async def _post(client: httpx.AsyncClient, account: Account, wasm: bytes) -> httpx.Response:
    return await client.post(
        "/api/v1/execute", headers=account.headers, files={"wasm": ("m.wasm", wasm)}
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_compiles_take_turns_and_the_budget_refuses_with_retry_after(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    await upgrade_async(url)
    # The bulk account's budget is lifted so only the turns are measured; free's is one
    # second a minute, so its second fresh module is refused.
    await set_tier(url, "pro", compile_seconds_per_minute=100_000)
    await set_tier(url, "free", compile_seconds_per_minute=1)
    bulk, other = await create_account(url), await create_account(url)
    frugal = await create_account(url, tier="free")
    server = await asyncio.to_thread(
        start_server_process,
        tmp_path / "var",
        url,
        max_concurrent_executions="8",
        compile_workers="2",
        compile_timeout="60",
    )
    large = big_module(variant=1)  # built once: converting 2 MB of text takes seconds
    variants = itertools.count(100)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
            # Budget: a 2 MB compile costs about a second of CPU (less on a fast, quiet
            # machine), so within a few fresh ones the budget is spent and a fresh
            # module is refused, while a compiled one still runs.
            assert (await _post(client, frugal, large)).status_code == 200
            answers = []
            for n in range(1, 6):
                answers.append(await _post(client, frugal, fresh(large, n)))
                if answers[-1].status_code != 200:
                    break
            refused = answers[-1]
            assert refused.status_code == 429, [a.text for a in answers]
            assert refused.json()["code"] == "compile_budget_exceeded"
            assert int(refused.headers["Retry-After"]) >= 1
            assert (await _post(client, frugal, large)).status_code == 200

            # Turns: four clients of one account compile fresh 2 MB modules in a loop.
            bulk_latencies: list[float] = []
            stop, all_busy = asyncio.Event(), asyncio.Event()

            async def compile_loop() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    response = await _post(client, bulk, fresh(large, next(variants)))
                    assert response.status_code == 200, response.text
                    bulk_latencies.append(time.monotonic() - started)
                    if len(bulk_latencies) >= 4:
                        all_busy.set()

            loops = [asyncio.create_task(compile_loop()) for _ in range(4)]
            # Four answered: from now on both workers are busy and two more wait.
            await all_busy.wait()
            other_latencies = []
            for n in range(3):
                started = time.monotonic()
                response = await _post(client, other, small_module(1000 + n))
                other_latencies.append(time.monotonic() - started)
                assert response.status_code == 200, response.text
            stop.set()
            await asyncio.gather(*loops)
    finally:
        server.stop()

    bulk_median = statistics.median(bulk_latencies)
    other_median = statistics.median(other_latencies)
    print(
        f"bulk compile requests: median {bulk_median:.2f} s over {len(bulk_latencies)}; "
        f"other account's small compiles: {[round(x, 2) for x in other_latencies]}"
    )
    # A bulk request waits for one compile and then compiles: about two compile times.
    # The other account waits only for the compile that frees a worker first (half a
    # compile on average), where a FIFO queue made it wait as long as the bulk did.
    assert other_median < 0.75 * bulk_median
