"""The sign-in throttle's growing delays, per (account, client network), on a manual clock."""

from __future__ import annotations

import itertools

import pytest

from wasmwiz.errors import LimitExceeded
from wasmwiz.ratelimit import ManualClock, MemoryRateLimiter
from wasmwiz.services.login_throttle import LoginThrottle, client_network

pytestmark = pytest.mark.anyio

MIDNIGHT = 1_700_006_400.0  # a 00:00 UTC


def throttle(clock: ManualClock) -> LoginThrottle:
    return LoginThrottle(
        MemoryRateLimiter(clock),
        per_account_per_minute=5,
        per_account_per_day=20,
        per_ip_per_minute=1000,
        fail_open=False,
    )


async def wait_needed(login: LoginThrottle, network: str) -> int:
    """Seconds the next attempt had to wait (0: allowed at once)."""
    try:
        await login.attempt("owner@example.com", network)
    except LimitExceeded as refused:
        return refused.retry_after or 0
    return 0


async def test_delays_grow_and_only_the_guessing_network_waits() -> None:
    clock = ManualClock(MIDNIGHT + 3600)
    login = throttle(clock)
    allowed_at = []
    for _ in range(20):  # as fast as the throttle lets a guesser go
        while (wait := await wait_needed(login, "203.0.113.9")) > 0:
            clock.advance(wait)
        allowed_at.append(clock.now())
    gaps = [later - earlier for earlier, later in itertools.pairwise(allowed_at)]
    # A burst of 5, then one every 12 s, then (past 10 today) one a minute.
    assert gaps == [0] * 4 + [12] * 6 + [60] * 9
    # The day's 20 are spent: until 00:00 UTC, for this network only.
    assert await wait_needed(login, "203.0.113.9") > 3600
    assert await wait_needed(login, "198.51.100.7") == 0
    clock.set(MIDNIGHT + 86_400)
    assert await wait_needed(login, "203.0.113.9") == 0


async def test_an_ipv6_network_is_one_client() -> None:
    clock = ManualClock(MIDNIGHT)
    login = throttle(clock)
    for host in range(5):
        assert await wait_needed(login, f"2001:db8:1:2::{host + 1}") == 0
    assert await wait_needed(login, "2001:db8:1:2:ffff::1") > 0
    assert await wait_needed(login, "2001:db8:1:3::1") == 0


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ],
)
def test_client_network(address: str, network: str) -> None:
    assert client_network(address) == network
