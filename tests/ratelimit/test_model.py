"""The value types and the arithmetic both backends share."""

from __future__ import annotations

import pytest

from wasmwiz.ratelimit import ManualClock, Quota, Refusal
from wasmwiz.ratelimit.bucket import (
    has_token,
    refill,
    seconds_until_midnight,
    seconds_until_token,
    utc_date,
)


@pytest.mark.parametrize(("per_minute", "per_day"), [(0, 10), (10, 0), (-1, 10)])
def test_quota_limits_must_be_positive(per_minute: int, per_day: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Quota(per_minute=per_minute, per_day=per_day)


def test_refusals_are_the_problem_codes() -> None:
    assert [str(r) for r in Refusal] == ["rate_limited", "daily_quota_exceeded"]


def test_a_new_bucket_is_full_and_refill_is_capped() -> None:
    assert refill(None, 0.0, 0.0, 10) == 10.0
    assert refill(0.0, 100.0, 130.0, 10) == 5.0
    assert refill(4.0, 100.0, 1000.0, 10) == 10.0
    assert refill(4.0, 100.0, 50.0, 10) == 4.0


def test_a_token_just_under_one_by_rounding_counts() -> None:
    assert has_token(0.9999999)
    assert not has_token(0.99)
    assert seconds_until_token(0.9999999, 10) == 0
    assert seconds_until_token(0.0, 10) == 6
    assert seconds_until_token(0.5, 10) == 3
    assert seconds_until_token(0.0, 500) == 1


def test_the_day_turns_at_midnight_utc() -> None:
    midnight = 1_709_337_600.0  # 2024-03-02 00:00:00 UTC
    assert utc_date(midnight - 0.001) == "2024-03-01"
    assert utc_date(midnight) == "2024-03-02"
    assert seconds_until_midnight(midnight - 0.25) == 1
    assert seconds_until_midnight(midnight) == 86_400


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(100.0)
    clock.advance(2.5)
    assert clock.now() == 102.5
    clock.set(50.0)
    assert clock.now() == 50.0
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
