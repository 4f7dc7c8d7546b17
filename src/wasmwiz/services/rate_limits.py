"""The admission gate for executions: the account's rate, daily quota and concurrency,
and a key's own lower limits on top of them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry import trace

from wasmwiz.errors import LimitExceeded, ServiceUnavailable, WasmWizError
from wasmwiz.observability.metrics import Metrics
from wasmwiz.observability.tracing import use_case_span
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.ratelimit import (
    Budget,
    Decision,
    Quota,
    RateLimiter,
    RateLimiterUnavailable,
    Refusal,
)
from wasmwiz.services.principals import Principal, TierLimits

logger = logging.getLogger(__name__)
security_log = logging.getLogger("wasmwiz.security")

# A slot whose holder died is reclaimed after this long; no run lasts nearly as long.
_SLOT_LEASE_SECONDS = 300.0
_UNAVAILABLE_RETRY_AFTER = 5


ACCOUNT_SCOPE = "account"
KEY_SCOPE = "key"


def rate_limit_headers(decision: Decision, scope: str = ACCOUNT_SCOPE) -> dict[str, str]:
    """The headers for one budget's figures; `X-RateLimit-Scope` says whose they are."""
    headers = {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_seconds),
        "X-RateLimit-Daily-Limit": str(decision.daily_limit),
        "X-RateLimit-Daily-Remaining": str(decision.daily_remaining),
        "X-RateLimit-Daily-Reset": str(decision.daily_reset_seconds),
        "X-RateLimit-Scope": scope,
    }
    if decision.retry_after_seconds is not None:
        headers["Retry-After"] = str(decision.retry_after_seconds)
    return headers


def admitted_headers(decisions: tuple[Decision, ...], scopes: tuple[str, ...]) -> dict[str, str]:
    """For an admitted request: the per-minute figures of the budget with fewer tokens left,
    the daily ones of the budget with less quota left, and the minute's scope."""
    minute = min(range(len(decisions)), key=lambda index: decisions[index].remaining)
    day = min(range(len(decisions)), key=lambda index: decisions[index].daily_remaining)
    headers = rate_limit_headers(decisions[minute], scopes[minute])
    daily = rate_limit_headers(decisions[day], scopes[day])
    for name in ("X-RateLimit-Daily-Limit", "X-RateLimit-Daily-Remaining"):
        headers[name] = daily[name]
    return headers


@dataclass(frozen=True, slots=True)
class AdmittedRequest:
    """What the gate decided for an admitted request (None when the limiter failed open)."""

    decision: Decision | None
    headers: dict[str, str] = field(default_factory=dict)


# Told of each admission with the account's figures after it (the webhooks' quota warning).
AdmissionWatcher = Callable[[Principal, Decision], None]


class AdmissionGate:
    def __init__(
        self,
        limiter: RateLimiter,
        metrics: Metrics,
        *,
        fail_open: bool,
        watcher: AdmissionWatcher | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._limiter = limiter
        self._metrics = metrics
        self._fail_open = fail_open
        self._watcher = watcher
        self._tracer = tracer

    def admit(self, principal: Principal, *, cost: int = 1) -> _HeldSlot:
        """Spend `cost` units of the principal's budget (a batch's size; one for a run) and
        hold one of its concurrency slots for as long as the `async with` block runs."""
        return _HeldSlot(self, principal, cost)

    async def refuse_without_room(self, principal: Principal) -> None:
        """Refuse now, spending nothing, a principal with no run left in its minute or
        day: for a request that must be read before its cost is known (a batch)."""
        budgets, scopes = _budgets(principal)
        try:
            decisions = [await self._limiter.peek(b.key, b.quota) for b in budgets]
        except RateLimiterUnavailable:
            return  # the admission that follows decides, failing open or closed
        for decision, scope in zip(decisions, scopes, strict=True):
            if not decision.allowed:
                self._refuse(principal, decision.refusal.code if decision.refusal else "", scope)
                raise LimitExceeded(
                    _refusal_message(decision, scope),
                    code=decision.refusal.code if decision.refusal else ProblemCode.RATE_LIMITED,
                    headers=rate_limit_headers(decision, scope),
                    retry_after=decision.retry_after_seconds,
                    extra={"limit": scope, "fits": 0},
                )

    async def extra_slots(self, principal: Principal, wanted: int) -> list[list[str]]:
        """Up to `wanted` more of the principal's concurrency slots, for a batch that runs
        cases side by side: as many as are free now in every budget (perhaps none). Each
        is a lease per budget; `release_extra_slots` gives them back."""
        budgets, _ = _budgets(principal)
        taken: list[list[str]] = []
        try:
            for _ in range(wanted):
                leases: list[str] = []
                for budget in budgets:
                    lease = await self._limiter.acquire_slot(
                        budget.key, budget.max_concurrent, _SLOT_LEASE_SECONDS
                    )
                    if lease is None:
                        break
                    leases.append(lease)
                if len(leases) < len(budgets):
                    for budget, lease in zip(budgets, leases, strict=False):
                        await self._limiter.release_slot(budget.key, lease)
                    break
                taken.append(leases)
        except RateLimiterUnavailable:
            pass  # fewer cases side by side, not a refusal; leases lapse by themselves
        return taken

    async def take_job_slot(self, principal: Principal, run_seconds: float) -> str | None:
        """One of the account's job slots, taken now for a job's run of up to `run_seconds`,
        or None when all are taken. An account runs at most its tier's
        `max_concurrent_executions` jobs at once, in slots of their own: running jobs never
        refuse the account's synchronous runs, nor its next submissions. Given back by
        `release_job_slot`; a slot whose holder died lapses `_SLOT_LEASE_SECONDS` after its
        run's time. When the limiter is unreachable, as admission does: run without a slot
        (fail open, "") or wait (None)."""
        try:
            return await self._limiter.acquire_slot(
                _job_slots_key(principal),
                principal.tier.max_concurrent_executions,
                run_seconds + _SLOT_LEASE_SECONDS,
            )
        except RateLimiterUnavailable:
            return "" if self._fail_open else None

    async def release_job_slot(self, principal: Principal, lease: str) -> None:
        if not lease:
            return  # taken while the limiter was down: there is none
        try:
            await self._limiter.release_slot(_job_slots_key(principal), lease)
        except RateLimiterUnavailable:
            logger.warning("could not release a job's slot; it will expire")

    async def release_extra_slots(self, principal: Principal, taken: list[list[str]]) -> None:
        budgets, _ = _budgets(principal)
        try:
            for leases in taken:
                for budget, lease in zip(budgets, leases, strict=True):
                    await self._limiter.release_slot(budget.key, lease)
        except RateLimiterUnavailable:
            logger.warning("could not release a batch's slots; they will expire")

    async def _enter(
        self, principal: Principal, cost: int = 1
    ) -> tuple[str | None, AdmittedRequest]:
        """`_decide`, in a span that says what was decided (a refusal is an answer, not
        a fault: the span's status stays unset)."""
        with use_case_span(self._tracer, "wasmwiz.admission") as span:
            try:
                lease, admission = await self._decide(principal, cost)
            except WasmWizError as refusal:
                span.set_attributes(
                    {
                        "wasmwiz.admission.cost": cost,
                        "wasmwiz.admission.admitted": False,
                        "wasmwiz.admission.refusal": str(refusal.code),
                        "wasmwiz.admission.scope": str(refusal.extra.get("limit", "")),
                    }
                )
                raise
            if not span.is_recording():
                return lease, admission
            span.set_attributes(
                {
                    "wasmwiz.admission.cost": cost,
                    "wasmwiz.admission.admitted": True,
                    "wasmwiz.tier": principal.tier.name,
                }
            )
            if admission.decision is not None:
                span.set_attributes(
                    {
                        "wasmwiz.admission.remaining": admission.decision.remaining,
                        "wasmwiz.admission.daily_remaining": admission.decision.daily_remaining,
                    }
                )
            else:
                span.set_attribute("wasmwiz.admission.failed_open", True)
            return lease, admission

    async def _decide(
        self, principal: Principal, cost: int = 1
    ) -> tuple[str | None, AdmittedRequest]:
        budgets, scopes = _budgets(principal)
        try:
            # Every budget's slot and spend in one step: one round trip when the limits live
            # in Redis, and no window in which a slot is held for a refused request; a budget
            # that refuses costs the others nothing.
            outcome = await self._limiter.admit_all(budgets, _SLOT_LEASE_SECONDS, cost=cost)
        except RateLimiterUnavailable:
            if not self._fail_open:
                self._metrics.rejections.labels(ProblemCode.RATE_LIMITER_UNAVAILABLE).inc()
                logger.error("rate limiter unavailable; refusing executions (fail closed)")
                raise ServiceUnavailable(
                    "Rate limiting is temporarily unavailable; try again shortly.",
                    code=ProblemCode.RATE_LIMITER_UNAVAILABLE,
                    headers={"Retry-After": str(_UNAVAILABLE_RETRY_AFTER)},
                    retry_after=_UNAVAILABLE_RETRY_AFTER,
                ) from None
            logger.error("rate limiter unavailable; admitting executions (fail open)")
            return None, AdmittedRequest(decision=None)

        decision = outcome.decision
        if outcome.lease is not None:
            if self._watcher is not None:
                self._watch(principal, outcome.decisions[0] if outcome.decisions else decision)
            return outcome.lease, AdmittedRequest(
                decision, admitted_headers(outcome.decisions, scopes)
            )
        scope = scopes[outcome.refused_by or 0]
        headers = rate_limit_headers(decision, scope)
        extra: dict[str, object] = {"limit": scope}
        if cost > 1:
            # How many runs of the batch would be admitted now: what every budget has left.
            extra["fits"] = (
                0
                if outcome.at_concurrency_cap
                else min(min(d.remaining, d.daily_remaining) for d in outcome.decisions)
            )
        if outcome.at_concurrency_cap:
            self._refuse(principal, ProblemCode.TOO_MANY_CONCURRENT, scope)
            cap = budgets[outcome.refused_by or 0].max_concurrent
            whose = "This key" if scope == KEY_SCOPE else "Your account"
            raise LimitExceeded(
                f"{whose} already has {cap} executions in flight (the {scope}'s limit); "
                "wait for one to finish.",
                code=ProblemCode.TOO_MANY_CONCURRENT,
                headers={**headers, "Retry-After": "1"},
                retry_after=1,
                extra=extra,
            )
        assert decision.refusal is not None
        self._refuse(principal, decision.refusal.code, scope)
        message = _refusal_message(decision, scope)
        if cost > 1:
            message = f"A batch of {cost} runs does not fit: {extra['fits']} would. " + message
        raise LimitExceeded(
            message,
            code=decision.refusal.code,
            headers=headers,
            retry_after=decision.retry_after_seconds,
            extra=extra,
        )

    def _watch(self, principal: Principal, account: Decision) -> None:
        assert self._watcher is not None
        try:
            self._watcher(principal, account)
        except Exception:
            # A watcher's fault never refuses a run.
            logger.exception("the admission watcher failed")

    async def _release(self, principal: Principal, lease: str) -> None:
        keys = [principal.rate_limit_key]
        if principal.key_budget_key is not None:
            keys.append(principal.key_budget_key)
        try:
            await self._limiter.release_all(keys, lease)
        except RateLimiterUnavailable:
            # The lease expires by itself; nothing is lost but a slot for a while.
            logger.warning("could not release a concurrency slot; it will expire")

    def _refuse(self, principal: Principal, limit: str, scope: str) -> None:
        self._metrics.rejections.labels(limit).inc()
        security_log.warning(
            "execution refused by the %s's %s",
            scope,
            limit,
            extra={
                "event": "rate_limit_refusal",
                "limit": limit,
                "scope": scope,
                "key_id": str(principal.api_key_id) if principal.api_key_id else None,
                "user_id": str(principal.user_id),
                "tier": principal.tier.name,
            },
        )


class _HeldSlot:
    """`async with gate.admit(principal) as admission:` (a class, not a generator-based
    context manager: this runs on every execution)."""

    __slots__ = ("_cost", "_gate", "_lease", "_principal")

    def __init__(self, gate: AdmissionGate, principal: Principal, cost: int = 1) -> None:
        self._gate = gate
        self._principal = principal
        self._cost = cost
        self._lease: str | None = None

    async def __aenter__(self) -> AdmittedRequest:
        self._lease, admission = await self._gate._enter(self._principal, self._cost)
        return admission

    async def __aexit__(self, *exc_info: object) -> None:
        if self._lease is not None:
            lease, self._lease = self._lease, None
            await self._gate._release(self._principal, lease)


def _job_slots_key(principal: Principal) -> str:
    # Nested in the account's name, as a key's own budget is (one Redis hash slot).
    return f"{principal.rate_limit_key}/jobs"


def _budgets(principal: Principal) -> tuple[list[Budget], tuple[str, ...]]:
    """The account's budget, and the key's own when it has lower limits, with their scopes."""
    tier = principal.tier
    budgets = [
        Budget(
            principal.rate_limit_key,
            Quota(tier.requests_per_minute, tier.requests_per_day),
            tier.max_concurrent_executions,
        )
    ]
    limits = principal.key_limits
    if principal.key_budget_key is None or limits is None:
        return budgets, (ACCOUNT_SCOPE,)
    budgets.append(
        Budget(
            principal.key_budget_key,
            Quota(
                limits.requests_per_minute or tier.requests_per_minute,
                limits.requests_per_day or tier.requests_per_day,
            ),
            limits.max_concurrent_executions or tier.max_concurrent_executions,
        )
    )
    return budgets, (ACCOUNT_SCOPE, KEY_SCOPE)


def _refusal_message(decision: Decision, scope: str) -> str:
    whose = "this key's own" if scope == KEY_SCOPE else "your account's"
    if decision.refusal is Refusal.DAILY_QUOTA_EXCEEDED:
        return (
            f"The daily quota of {decision.daily_limit} executions ({whose} limit) is used up; "
            "it resets at 00:00 UTC."
        )
    return (
        f"More than {decision.limit} executions a minute ({whose} limit); "
        f"retry in {decision.retry_after_seconds} s."
    )


class AccountBudget:
    """A per-account budget for one kind of request, spent before the database is touched,
    by every attempt: a flood is refused by the limiter, not by the database. A subclass
    names its bucket, its problem code and how a refusal reads (`{limit}` filled in)."""

    bucket: str
    code: ProblemCode
    daily_refusal: str
    minute_refusal: str

    def __init__(
        self, limiter: RateLimiter, metrics: Metrics, quota: Quota, *, fail_open: bool
    ) -> None:
        self._limiter = limiter
        self._metrics = metrics
        self._quota = quota
        self._fail_open = fail_open

    async def spend(self, user_id: uuid.UUID, quota: Quota | None = None) -> None:
        """One from the account's budget: `quota` when given, else this budget's own."""
        try:
            decision = await self._limiter.consume(
                f"{self.bucket}:{user_id}", self._quota if quota is None else quota
            )
        except RateLimiterUnavailable:
            if self._fail_open:
                logger.error("rate limiter unavailable; allowing %s (fail open)", self.bucket)
                return
            self._metrics.rejections.labels(ProblemCode.RATE_LIMITER_UNAVAILABLE).inc()
            raise ServiceUnavailable(
                "Rate limiting is temporarily unavailable; try again shortly.",
                code=ProblemCode.RATE_LIMITER_UNAVAILABLE,
                headers={"Retry-After": str(_UNAVAILABLE_RETRY_AFTER)},
                retry_after=_UNAVAILABLE_RETRY_AFTER,
            ) from None
        if decision.allowed:
            return
        self._metrics.rejections.labels(self.code).inc()
        raise LimitExceeded(
            f"{self.refusal(decision)}; retry in {decision.retry_after_seconds} s.",
            code=self.code,
            headers={"Retry-After": str(decision.retry_after_seconds)},
            retry_after=decision.retry_after_seconds,
        )

    def refusal(self, decision: Decision) -> str:
        if decision.refusal is Refusal.DAILY_QUOTA_EXCEEDED:
            return self.daily_refusal.format(limit=decision.daily_limit)
        return self.minute_refusal.format(limit=decision.limit)


class KeyCreationLimit(AccountBudget):
    """Creating API keys (KEY_CREATIONS_PER_MINUTE and _PER_DAY), over the API and the web."""

    bucket = "keys"
    code = ProblemCode.KEY_CREATION_RATE_LIMITED
    daily_refusal = "Your account has created {limit} keys today, the limit"
    minute_refusal = "Your account may create {limit} keys a minute"


class ApiRequestLimit(AccountBudget):
    """Every API call with a key but the runs themselves: listing, reading usage, polling
    jobs, managing keys, modules and webhooks; and every request of a signed-in user to the
    pages. The budget is the tier's own where it has one, else API_REQUESTS_PER_MINUTE and
    _PER_DAY (`quota_of`). The API's runs (execute, batch) have their tier's limits
    instead."""

    bucket = "api"
    code = ProblemCode.API_RATE_LIMITED
    daily_refusal = "Your account has made {limit} requests today (API calls and pages), the limit"
    minute_refusal = "Your account may make {limit} requests a minute (API calls and pages)"

    async def spend_for(self, user_id: uuid.UUID, tier: TierLimits) -> None:
        """One from the account's budget, its tier's own where the tier sets one
        (migration 0013), the server's where it does not."""
        await self.spend(user_id, self.quota_of(tier))

    def quota_of(self, tier: TierLimits) -> Quota:
        if tier.api_requests_per_minute is None and tier.api_requests_per_day is None:
            return self._quota
        return Quota(
            tier.api_requests_per_minute or self._quota.per_minute,
            tier.api_requests_per_day or self._quota.per_day,
        )
