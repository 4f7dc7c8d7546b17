"""Two server processes sharing one Redis and one database enforce one exact limit."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.api import wat
from tests.api.test_rate_limits import set_tier
from tests.fixtures.app import ServerProcess, create_account

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

REDIS_URL = os.environ.get("WASMWIZ_TEST_REDIS_URL")


async def test_two_replicas_admit_exactly_the_per_minute_limit(
    process_factory: Callable[..., ServerProcess], migrated_database_url: str
) -> None:
    if not REDIS_URL:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    replicas = [process_factory(rate_limit_backend="redis", redis_url=REDIS_URL) for _ in range(2)]
    assert replicas[0].url != replicas[1].url
    # Free is 10 a minute; its concurrency cap of 2 is lifted so only the rate decides.
    await set_tier(migrated_database_url, "free", max_concurrent_executions=50)
    account = await create_account(migrated_database_url, tier="free")
    files = {"wasm": ("hello.wat", wat.HELLO.encode())}

    async def post(url: str) -> int:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            response = await client.post("/api/v1/execute", headers=account.headers, files=files)
            return response.status_code

    statuses = await asyncio.gather(*(post(replicas[i % 2].url) for i in range(30)))
    assert Counter(statuses) == {200: 10, 429: 20}
