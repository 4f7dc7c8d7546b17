"""The admission gate for executions: per-key rate, daily quota and concurrency."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wasmwiz.errors import LimitExceeded, ServiceUnavailable
from wasmwiz.observability.metrics import Metrics
from wasmwiz.ratelimit import Decision, Quota, RateLimiter, RateLimiterUnavailable, Refusal
from wasmwiz.services.principals import Principal

logger = logging.getLogger(__name__)
security_log = logging.getLogger("wasmwiz.security")

# A slot whose holder died is reclaimed after this long; no run lasts nearly as long.
_SLOT_LEASE_SECONDS = 300.0
_UNAVAILABLE_RETRY_AFTER = 5


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_seconds),
        "X-RateLimit-Daily-Limit": str(decision.daily_limit),
        "X-RateLimit-Daily-Remaining": str(decision.daily_remaining),
        "X-RateLimit-Daily-Reset": str(decision.daily_reset_seconds),
    }
    if decision.retry_after_seconds is not None:
        headers["Retry-After"] = str(decision.retry_after_seconds)
    return headers


@dataclass(frozen=True, slots=True)
class Admission:
    """What the gate decided for an admitted request (None when the limiter failed open)."""

    decision: Decision | None

    @property
    def headers(self) -> dict[str, str]:
        return rate_limit_headers(self.decision) if self.decision else {}


class AdmissionGate:
    def __init__(self, limiter: RateLimiter, metrics: Metrics, *, fail_open: bool) -> None:
        self._limiter = limiter
        self._metrics = metrics
        self._fail_open = fail_open

    def admit(self, principal: Principal) -> _Admitting:
        """Spend one unit of the principal's budget and hold one of its concurrency slots
        for as long as the `async with` block runs."""
        return _Admitting(self, principal)

    async def _enter(self, principal: Principal) -> tuple[str | None, Decision | None]:
        quota = Quota(principal.tier.requests_per_minute, principal.tier.requests_per_day)
        key = principal.rate_limit_key
        try:
            # The slot and the spend in one step: one round trip when the limits live in
            # Redis, and no window in which a slot is held for a refused request.
            admittance = await self._limiter.admit(
                key, quota, principal.tier.max_concurrent_executions, _SLOT_LEASE_SECONDS
            )
        except RateLimiterUnavailable:
            if not self._fail_open:
                self._metrics.rejections.labels("rate_limiter_unavailable").inc()
                logger.error("rate limiter unavailable; refusing executions (fail closed)")
                raise ServiceUnavailable(
                    "Rate limiting is temporarily unavailable; try again shortly.",
                    code="rate_limiter_unavailable",
                    headers={"Retry-After": str(_UNAVAILABLE_RETRY_AFTER)},
                    retry_after=_UNAVAILABLE_RETRY_AFTER,
                ) from None
            logger.error("rate limiter unavailable; admitting executions (fail open)")
            return None, None

        decision = admittance.decision
        if admittance.at_concurrency_cap:
            self._refuse(principal, "too_many_concurrent")
            raise LimitExceeded(
                f"This key already has {principal.tier.max_concurrent_executions} executions "
                "in flight; wait for one to finish.",
                code="too_many_concurrent",
                headers={**rate_limit_headers(decision), "Retry-After": "1"},
                retry_after=1,
            )
        if admittance.lease is None:
            assert decision.refusal is not None
            self._refuse(principal, decision.refusal.value)
            raise LimitExceeded(
                _refusal_message(decision),
                code=decision.refusal.value,
                headers=rate_limit_headers(decision),
                retry_after=decision.retry_after_seconds,
            )
        return admittance.lease, decision

    async def _release(self, key: str, lease: str) -> None:
        try:
            await self._limiter.release_slot(key, lease)
        except RateLimiterUnavailable:
            # The lease expires by itself; nothing is lost but a slot for a while.
            logger.warning("could not release a concurrency slot; it will expire")

    def _refuse(self, principal: Principal, limit: str) -> None:
        self._metrics.rejections.labels(limit).inc()
        security_log.warning(
            "execution refused by %s",
            limit,
            extra={
                "event": "rate_limit_refusal",
                "limit": limit,
                "key_id": str(principal.api_key_id) if principal.api_key_id else None,
                "user_id": str(principal.user_id),
                "tier": principal.tier.name,
            },
        )


class _Admitting:
    """`async with gate.admit(principal) as admission:` (a class, not a generator-based
    context manager: this runs on every execution)."""

    __slots__ = ("_gate", "_lease", "_principal")

    def __init__(self, gate: AdmissionGate, principal: Principal) -> None:
        self._gate = gate
        self._principal = principal
        self._lease: str | None = None

    async def __aenter__(self) -> Admission:
        self._lease, decision = await self._gate._enter(self._principal)
        return Admission(decision=decision)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._lease is not None:
            lease, self._lease = self._lease, None
            await self._gate._release(self._principal.rate_limit_key, lease)


def _refusal_message(decision: Decision) -> str:
    if decision.refusal is Refusal.DAILY_QUOTA_EXCEEDED:
        return (
            f"The daily quota of {decision.daily_limit} executions is used up; "
            "it resets at 00:00 UTC."
        )
    return (
        f"More than {decision.limit} executions a minute; "
        f"retry in {decision.retry_after_seconds} s."
    )
