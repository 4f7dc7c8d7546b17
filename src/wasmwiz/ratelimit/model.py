"""The rate-limiter contract: quotas in, decisions out, and the one backend error."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wasmwiz.problem_codes import ProblemCode


@dataclass(frozen=True, slots=True)
class Quota:
    """A tier's limits, read from the database and passed in with every call."""

    per_minute: int
    per_day: int

    def __post_init__(self) -> None:
        # A zero limit would mean "never refills": suspending a key is the caller's
        # decision, not a quota.
        if self.per_minute < 1 or self.per_day < 1:
            raise ValueError(f"quota limits must be at least 1, got {self}")


class Refusal(enum.StrEnum):
    """Why a request was refused; the values are the API's problem codes."""

    RATE_LIMITED = ProblemCode.RATE_LIMITED
    DAILY_QUOTA_EXCEEDED = ProblemCode.DAILY_QUOTA_EXCEEDED

    @property
    def code(self) -> ProblemCode:
        return ProblemCode[self.name]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one rate-limit check, with the figures for the response headers."""

    allowed: bool
    refusal: Refusal | None
    limit: int
    """The per-minute limit (X-RateLimit-Limit)."""
    remaining: int
    """Whole tokens left after this decision (X-RateLimit-Remaining)."""
    reset_seconds: int
    """Whole seconds until one more token is available, 0 if one is now (X-RateLimit-Reset)."""
    daily_limit: int
    daily_remaining: int
    daily_reset_seconds: int
    """Whole seconds until the next 00:00 UTC, when the daily quota resets."""
    retry_after_seconds: int | None
    """When refused, at least 1: after that many seconds a retry succeeds, provided nothing
    else spends the budget meanwhile (Retry-After). None when allowed."""


@dataclass(frozen=True, slots=True)
class Budget:
    """One of the budgets an ``admit_all`` must find room in: a key, its quota and slots."""

    key: str
    quota: Quota
    max_concurrent: int


@dataclass(frozen=True, slots=True)
class AdmitOutcome:
    """What ``admit`` decided: a lease on a slot and a spent unit, or neither and why."""

    lease: str | None
    """The slot's lease id when admitted; None when refused (nothing is held or spent)."""
    decision: Decision
    """The budget's figures: spent from when admitted, as ``peek`` would say otherwise."""
    at_concurrency_cap: bool
    """Refused because every slot was taken (the budget was not even asked)."""
    refused_by: int | None = None
    """With ``admit_all``: the index of the budget that refused (None when admitted)."""
    decisions: tuple[Decision, ...] = ()
    """With ``admit_all``: every budget's figures, in the order the budgets were given."""


class RateLimiterUnavailable(Exception):
    """The rate-limit backend could not be reached or did not answer in time.

    The caller decides whether to fail open (allow) or closed (refuse with 503).
    """


class RateLimiter(Protocol):
    """Per-key token bucket, daily quota and concurrency slots."""

    errors: int
    """Calls that raised RateLimiterUnavailable since start (the metrics read it)."""

    async def consume(self, key: str, quota: Quota) -> Decision:
        """Spend one token and one unit of daily quota atomically, or nothing and say why."""
        ...

    async def peek(self, key: str, quota: Quota) -> Decision:
        """The figures ``consume`` would report, without spending anything.

        ``allowed`` says whether a consume now would succeed; ``remaining`` is the tokens
        available now (nothing is subtracted).
        """
        ...

    async def acquire_slot(
        self, key: str, max_concurrent: int, lease_seconds: float = 300.0
    ) -> str | None:
        """Take one of ``max_concurrent`` slots as a lease id, or None at the cap.

        The lease lapses after ``lease_seconds`` if never released, so a holder that
        dies cannot keep the slot.
        """
        ...

    async def release_slot(self, key: str, lease_id: str) -> None:
        """Give a slot back; releasing an unknown or lapsed lease does nothing."""
        ...

    async def admit(
        self, key: str, quota: Quota, max_concurrent: int, lease_seconds: float = 300.0
    ) -> AdmitOutcome:
        """``acquire_slot`` and ``consume`` as one atomic step (one round trip to Redis).

        Admitted: a lease is held and one unit spent. At the concurrency cap: no lease,
        nothing spent, and the figures ``peek`` would give. Refused by the minute or the
        day: no lease is left held and nothing is spent.
        """
        ...

    async def admit_all(
        self, budgets: Sequence[Budget], lease_seconds: float = 300.0, *, cost: int = 1
    ) -> AdmitOutcome:
        """``admit`` over several budgets at once (an account's and its key's), atomically.

        ``cost`` units are spent from each budget (a batch of that many runs), all or none;
        still one slot is held. ``decision`` reports each budget's figures as for one unit.

        Admitted only if every budget has a free slot, a token and daily quota left; then
        one lease id holds a slot in each and one unit is spent from each. Refused: nothing
        is held or spent in any of them, so a refusal by one budget never costs the others.
        ``decision`` and ``at_concurrency_cap`` describe the refusing budget (of several,
        the one whose Retry-After is longest; ties go to the earliest), or the first budget
        when admitted. ``release_all`` with the same keys gives the slots back.
        """
        ...

    async def release_all(self, keys: Sequence[str], lease_id: str) -> None:
        """``release_slot`` for a lease taken by ``admit_all``, in every budget it holds."""
        ...

    async def ping(self) -> None:
        """Raise RateLimiterUnavailable if the backend cannot be reached."""
        ...

    async def close(self) -> None:
        """Release the resources this limiter owns."""
        ...
