"""deterministic=true: virtual clocks and seeded randomness give byte-identical output."""

from __future__ import annotations

import struct
import time

from tests.sandbox.conftest import fixture_wat
from wasmwiz.sandbox import Limits, Outcome, RunRequest, RunResult, Sandbox

ROOMY = Limits(timeout_seconds=10)
VIRTUAL_EPOCH_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
SLEEP_NS = 3 * 10**9


def run(sandbox: Sandbox, request: RunRequest, limits: Limits = ROOMY) -> RunResult:
    return sandbox.run(sandbox.prepare(fixture_wat("time_random_sleep")), request, limits)


def fields(stdout: bytes) -> tuple[int, int, bytes, int, int, bytes]:
    real1, mono1, random1, real2, mono2, random2 = struct.unpack("<QQ16sQQ16s", stdout)
    return real1, mono1, random1, real2, mono2, random2


def test_same_seed_same_bytes_and_the_sleep_is_virtual(sandbox: Sandbox) -> None:
    first = run(sandbox, RunRequest(deterministic=True, seed=42))
    second = run(sandbox, RunRequest(deterministic=True, seed=42))

    assert first.outcome is Outcome.SUCCESS
    assert first.stdout == second.stdout
    assert first.stderr == second.stderr
    real1, mono1, random1, real2, mono2, random2 = fields(first.stdout)
    assert (real1, mono1) == (VIRTUAL_EPOCH_NS, 0)
    assert (real2, mono2) == (VIRTUAL_EPOCH_NS + SLEEP_NS, SLEEP_NS)
    assert random1 != random2
    # A 3 s sleep, finished in a fraction of it (the bound leaves room for a busy machine).
    assert first.duration_seconds < 1.0
    assert second.duration_seconds < 1.0


def test_different_seeds_differ(sandbox: Sandbox) -> None:
    zero = run(sandbox, RunRequest(deterministic=True))
    one = run(sandbox, RunRequest(deterministic=True, seed=1))

    assert fields(zero.stdout)[2] != fields(one.stdout)[2]
    assert fields(zero.stdout)[:2] == fields(one.stdout)[:2]


def test_without_it_clocks_and_randomness_are_real(sandbox: Sandbox) -> None:
    before = time.time_ns()
    first = run(sandbox, RunRequest())
    second = run(sandbox, RunRequest())

    real1, _, random1, real2, mono2, _ = fields(first.stdout)
    assert before <= real1 < real2 <= time.time_ns()
    assert mono2 >= SLEEP_NS
    assert first.duration_seconds >= 3
    assert random1 != fields(second.stdout)[2]


def test_a_virtual_sleep_past_the_time_limit_is_a_timeout(sandbox: Sandbox) -> None:
    result = run(sandbox, RunRequest(deterministic=True), Limits(timeout_seconds=1))

    assert result.outcome is Outcome.TIMEOUT
    # Stopped when the virtual clock passed the limit, not after a real second.
    assert result.duration_seconds < 0.9
