"""An account's job slots: as many as its tier's concurrency, apart from its synchronous
runs', held for as long as a job may run (the real gate and in-memory limiter, a manual
clock)."""

from __future__ import annotations

import uuid

import pytest

from wasmwiz.observability.metrics import Metrics
from wasmwiz.ratelimit.clock import ManualClock
from wasmwiz.ratelimit.memory import MemoryRateLimiter
from wasmwiz.services.principals import Principal, TierLimits
from wasmwiz.services.rate_limits import AdmissionGate

pytestmark = pytest.mark.anyio

TIER = TierLimits("free", 10, 500, max_concurrent_executions=2, max_fuel=None)


def gate(clock: ManualClock) -> AdmissionGate:
    return AdmissionGate(MemoryRateLimiter(clock), Metrics(), fail_open=False)


def account() -> Principal:
    return Principal(user_id=uuid.uuid4(), email="a@example.com", tier=TIER)


async def test_an_account_runs_as_many_jobs_as_its_tier_allows_apart_from_its_runs() -> None:
    slots, principal = gate(ManualClock()), account()
    held = [await slots.take_job_slot(principal, 5) for _ in range(2)]
    assert all(held)
    assert await slots.take_job_slot(principal, 5) is None
    assert await slots.take_job_slot(account(), 5)  # another account's are its own
    async with slots.admit(principal):  # its synchronous runs are not refused
        pass
    await slots.release_job_slot(principal, str(held[0]))
    assert await slots.take_job_slot(principal, 5)


async def test_a_long_jobs_slot_is_held_for_its_whole_run() -> None:
    clock = ManualClock()
    slots, principal = gate(clock), account()
    for _ in range(2):
        assert await slots.take_job_slot(principal, 600)
    clock.advance(599)  # past the 300 s a synchronous run's slot is held
    assert await slots.take_job_slot(principal, 600) is None
    clock.advance(600)  # past its run and the margin: a holder that died gives it back
    assert await slots.take_job_slot(principal, 600)
