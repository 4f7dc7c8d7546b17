"""A flood of API calls other than runs, against a real `wasmwiz serve` process.

One account floods `GET /api/v1/usage?group_by=day` (summed by the database) from eight
connections at once. The account's API budget admits what it holds and the limiter
refuses the rest before the route reads anything; what the refusals cost the server is
measured as its CPU time per refused call (all its threads, from /proc), and another
account is served throughout.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import ServerProcess, create_account
from tests.ops.metrics_text import sample

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BUDGET = 20  # calls a minute: one more each 3 s while the flood runs
FLOOD = 400
CONNECTIONS = 8
USAGE = "/api/v1/usage?group_by=day"
# Far above what a refusal costs (authentication from the key cache, one limiter call,
# the problem details: about 0.3-0.5 ms of CPU here), far below what reading the database
# for each would add on a loaded machine.
REFUSAL_CPU_BOUND_SECONDS = 0.003


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far, all its threads together."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_an_api_flood_is_refused_by_the_limiter_and_costs_little(
    process_factory: Callable[..., ServerProcess], migrated_database_url: str
) -> None:
    server = process_factory(api_requests_per_minute=str(BUDGET))
    # Tiers without a budget of their own (pro has one, migration 0013): the server's.
    flooder = await create_account(migrated_database_url, tier="basic")
    bystander = await create_account(migrated_database_url, tier="basic")
    limits = httpx.Limits(max_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        # The first call puts the key in the key cache, as any flood's first call would.
        assert (await client.get(USAGE, headers=flooder.headers)).status_code == 200
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(FLOOD):
            queue.put_nowait(n)
        statuses: Counter[tuple[int, str]] = Counter()

        async def flood() -> None:
            while not queue.empty():
                queue.get_nowait()
                response = await client.get(USAGE, headers=flooder.headers)
                code = response.json().get("code", "") if response.status_code != 200 else ""
                statuses[(response.status_code, code)] += 1

        started_cpu = cpu_seconds(server.process.pid)
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(flood() for _ in range(CONNECTIONS)))
        seconds = asyncio.get_running_loop().time() - started
        spent_cpu = cpu_seconds(server.process.pid) - started_cpu
        # Another account, served throughout; what its admitted calls cost, for scale.
        served = await client.get(USAGE, headers=bystander.headers)
        started_cpu = cpu_seconds(server.process.pid)
        for _ in range(BUDGET // 2):
            assert (await client.get(USAGE, headers=bystander.headers)).status_code == 200
        per_admitted = (cpu_seconds(server.process.pid) - started_cpu) / (BUDGET // 2)
        metrics = (await client.get("/metrics")).text

    admitted = statuses[(200, "")]
    refused = statuses[(429, "api_rate_limited")]
    per_refusal = spent_cpu / max(refused, 1)
    print(
        f"{FLOOD} calls in {seconds:.2f} s: {admitted} admitted, {refused} refused; "
        f"server CPU {spent_cpu * 1000:.0f} ms, {per_refusal * 1000:.2f} ms a call; "
        f"an admitted call {per_admitted * 1000:.2f} ms"
    )
    # The budget less the first call, and what refilled while the flood ran; no more.
    assert admitted <= BUDGET - 1 + int(seconds * BUDGET / 60) + 1, statuses
    assert admitted + refused == FLOOD, statuses
    assert sample(metrics, "wasmwiz_requests_refused_total", code="api_rate_limited") == refused
    assert per_refusal < REFUSAL_CPU_BOUND_SECONDS
    assert served.status_code == 200, served.text
