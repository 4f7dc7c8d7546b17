"""Fixtures shared by the API's limit tests: the limiter backend and a clock they own."""

from __future__ import annotations

import os
from typing import Any

import pytest

from wasmwiz.ratelimit import ManualClock

REDIS_URL = os.environ.get("WASMWIZ_TEST_REDIS_URL")
# 2023-11-14 22:13:20 UTC: far enough from midnight that the daily window does not roll.
START = 1_700_000_000.0


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The server settings for each rate-limiter backend (Redis where configured)."""
    if request.param == "memory":
        return {}
    if not REDIS_URL:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    return {"rate_limit_backend": "redis", "redis_url": REDIS_URL}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)
