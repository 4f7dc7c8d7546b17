"""Token-bucket and daily-quota arithmetic, shared by every backend so their figures agree."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from wasmwiz.ratelimit.model import Decision, Quota, Refusal

EPSILON = 1e-4
"""Tokens of slack when asking "is there a whole token?".

Refill is ``elapsed * rate`` in floats, and UNIX timestamps near 1.7e9 carry only ~2e-7 s of
precision, so a bucket that has mathematically refilled to exactly 1 can hold 0.9999999.
Without the slack, waiting exactly Retry-After seconds could still be refused. At 10/min the
slack lets a token through at most 0.6 ms early.
"""

SECONDS_PER_DAY = 86_400
_EPOCH = dt.date(1970, 1, 1)


def refill(tokens: float | None, updated_at: float, now: float, capacity: int) -> float:
    """Tokens in a bucket at ``now``; a bucket never seen (or dropped when full) is full.

    Clamping to ``capacity`` is also what applies a tier change: a smaller limit caps the
    tokens at once, a larger one fills up at the new rate. The Redis script mirrors this
    expression operation for operation, so both backends round identically.
    """
    if tokens is None:
        return float(capacity)
    # Replicas' clocks can disagree a little: time running backwards must not drain tokens.
    elapsed = max(0.0, now - updated_at)
    return min(float(capacity), tokens + elapsed * (capacity / 60))


def has_token(tokens: float) -> bool:
    return tokens + EPSILON >= 1.0


def whole_tokens(tokens: float) -> int:
    return max(0, math.floor(tokens + EPSILON))


def seconds_until_token(tokens: float, capacity: int) -> int:
    """Whole seconds until the bucket holds a token again; 0 if it holds one now.

    Rounded up from the moment the bucket reaches ``1 - EPSILON / 2``: that is still inside
    the slack ``has_token`` grants, so after exactly this many seconds a token is there even
    with rounding noise.
    """
    if has_token(tokens):
        return 0
    return math.ceil((1.0 - EPSILON / 2 - tokens) / (capacity / 60))


def utc_day(now: float) -> int:
    """Days since the epoch in UTC: the daily quota's period."""
    return math.floor(now / SECONDS_PER_DAY)


def utc_date(now: float) -> str:
    """The UTC date as YYYY-MM-DD, for naming a day's counter."""
    return (_EPOCH + dt.timedelta(days=utc_day(now))).isoformat()


def seconds_until_midnight(now: float) -> int:
    """Whole seconds (rounded up, at least 1) until the next 00:00 UTC."""
    return max(1, math.ceil((utc_day(now) + 1) * SECONDS_PER_DAY - now))


def decide(
    quota: Quota,
    *,
    now: float,
    tokens: float,
    daily_used: int,
    minute_ok: bool,
    day_ok: bool,
) -> Decision:
    """Shape a decision from the bucket and counter after it (spent or not).

    ``minute_ok`` and ``day_ok`` say whether each budget had room before spending.
    """
    reset_seconds = seconds_until_token(tokens, quota.per_minute)
    daily_reset_seconds = seconds_until_midnight(now)
    refusal: Refusal | None
    retry_after: int | None
    if minute_ok and day_ok:
        refusal, retry_after = None, None
    elif not day_ok:
        refusal = Refusal.DAILY_QUOTA_EXCEEDED
        # If the bucket is empty too, a retry at midnight must also find a token.
        retry_after = max(1, daily_reset_seconds, reset_seconds)
    else:
        refusal, retry_after = Refusal.RATE_LIMITED, max(1, reset_seconds)
    return Decision(
        allowed=refusal is None,
        refusal=refusal,
        limit=quota.per_minute,
        remaining=whole_tokens(tokens),
        reset_seconds=reset_seconds,
        daily_limit=quota.per_day,
        daily_remaining=max(0, quota.per_day - daily_used),
        daily_reset_seconds=daily_reset_seconds,
        retry_after_seconds=retry_after,
    )


def refusing_budget(decisions: Sequence[Decision], at_cap: Sequence[bool]) -> int | None:
    """Of budgets checked together, the index of the one to report as refusing, or None.

    The one whose Retry-After is longest (a full concurrency cap counts as 1 s): waiting
    that long is what it takes for all of them to have room. Ties go to the earliest.
    """
    refusing, longest = None, 0
    for index, (decision, full) in enumerate(zip(decisions, at_cap, strict=True)):
        if full:
            retry = 1
        elif not decision.allowed:
            retry = decision.retry_after_seconds or 1
        else:
            continue
        if retry > longest:
            refusing, longest = index, retry
    return refusing
