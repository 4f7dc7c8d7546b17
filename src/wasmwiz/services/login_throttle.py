"""Throttles sign-in and sign-up per client network and account, on the shared rate limiter."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from wasmwiz.errors import LimitExceeded, ServiceUnavailable
from wasmwiz.persistence.repositories.users import normalize_email
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.ratelimit import Decision, Quota, RateLimiter, RateLimiterUnavailable

security_log = logging.getLogger("wasmwiz.security")
# A day allows this many minutes' worth of sign-in attempts from one network.
_DAILY_MULTIPLE = 20
# After this many attempts today on one account from one network: one a minute at most.
_SLOW_AFTER = 10
_UNAVAILABLE_RETRY_AFTER = 5
_IPV6_NETWORK_BITS = 64


def client_network(address: str) -> str:
    """What one client controls: an IPv4 address, or the /64 an IPv6 address is in.

    One IPv6 host is usually given a whole /64, so keying on the full address would let
    it take a new identity per request.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_NETWORK_BITS), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class _Budget:
    key: str
    quota: Quota
    scope: str


@dataclass(frozen=True, slots=True)
class _Refused:
    scope: str
    decision: Decision


async def _spend(
    limiter: RateLimiter, budgets: Sequence[_Budget], *, fail_open: bool
) -> list[Decision] | _Refused | None:
    """One unit from each budget in turn; the first refusal; or None when failing open."""
    decisions = []
    for budget in budgets:
        try:
            decision = await limiter.consume(budget.key, budget.quota)
        except RateLimiterUnavailable:
            if fail_open:
                return None
            raise ServiceUnavailable(
                "This is temporarily unavailable; try again shortly.",
                code=ProblemCode.RATE_LIMITER_UNAVAILABLE,
                retry_after=_UNAVAILABLE_RETRY_AFTER,
            ) from None
        if not decision.allowed:
            return _Refused(budget.scope, decision)
        decisions.append(decision)
    return decisions


class LoginThrottle:
    """Sign-in attempts per (account, client network), and per network across accounts.

    Delays grow with the attempts on one account from one network: a burst of
    `per_account_per_minute`, then one every 60/`per_account_per_minute` seconds, one a
    minute after `_SLOW_AFTER` today, and none after `per_account_per_day` until 00:00 UTC.
    Only that network is held back: the owner signs in from any other, so guessing from
    one place cannot lock the account out. Every attempt counts, successful or not:
    charging only failures would let parallel guesses all pass a check.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        per_account_per_minute: int,
        per_account_per_day: int,
        per_ip_per_minute: int,
        fail_open: bool,
    ) -> None:
        self._limiter = limiter
        self._fail_open = fail_open
        self._pair = Quota(per_account_per_minute, per_account_per_day)
        self._slow = Quota(1, per_account_per_day)
        self._network = Quota(per_ip_per_minute, per_ip_per_minute * _DAILY_MULTIPLE)

    async def attempt(self, email: str, client_ip: str) -> None:
        """Spend one attempt for the network and one for (account, network), or 429."""
        network = client_network(client_ip)
        pair = _Budget(f"login:pair:{normalize_email(email)}|{network}", self._pair, "account")
        spent = await _spend(
            self._limiter,
            [_Budget(f"login:net:{network}", self._network, "network")],
            fail_open=self._fail_open,
        )
        if isinstance(spent, _Refused):
            self._refuse(spent, client_ip)
        # The pair is looked at before anything of it is spent, so a refusal by the
        # one-a-minute bucket does not also use up one of the day's attempts.
        try:
            peeked = await self._limiter.peek(pair.key, pair.quota)
        except RateLimiterUnavailable:
            peeked = None  # the spend below meets the same outage and decides
        budgets = [pair]
        if peeked is not None:
            if not peeked.allowed:
                self._refuse(_Refused(pair.scope, peeked), client_ip)
            if peeked.daily_limit - peeked.daily_remaining >= _SLOW_AFTER:
                budgets.insert(0, _Budget(f"login:slow:{pair.key}", self._slow, "account"))
        spent = await _spend(self._limiter, budgets, fail_open=self._fail_open)
        if isinstance(spent, _Refused):
            self._refuse(spent, client_ip)

    @staticmethod
    def _refuse(refused: _Refused, client_ip: str) -> NoReturn:
        retry_after = refused.decision.retry_after_seconds or 60
        security_log.warning(
            "sign-in throttled per %s",
            refused.scope,
            extra={"event": "login_throttled", "scope": refused.scope, "client_ip": client_ip},
        )
        raise LimitExceeded(
            f"Too many sign-in attempts; try again in {retry_after} seconds.",
            code=ProblemCode.TOO_MANY_LOGIN_ATTEMPTS,
            retry_after=retry_after,
        )


class SignupThrottle:
    """Sign-ups per client network and for the whole service (every replica shares them).

    Each sign-up costs an argon2 hash and a row, so an unthrottled form is a CPU and
    storage sink; the global budget caps what many networks together can take.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        per_network: Quota,
        overall: Quota,
        fail_open: bool,
    ) -> None:
        self._limiter = limiter
        self._per_network = per_network
        self._overall = overall
        self._fail_open = fail_open

    async def attempt(self, client_ip: str) -> None:
        network = client_network(client_ip)
        spent = await _spend(
            self._limiter,
            [
                _Budget(f"signup:net:{network}", self._per_network, "network"),
                _Budget("signup:all", self._overall, "global"),
            ],
            fail_open=self._fail_open,
        )
        if not isinstance(spent, _Refused):
            return
        retry_after = spent.decision.retry_after_seconds or 60
        security_log.warning(
            "sign-up throttled per %s",
            spent.scope,
            extra={"event": "signup_throttled", "scope": spent.scope, "client_ip": client_ip},
        )
        raise LimitExceeded(
            f"Too many sign-ups; try again in {retry_after} seconds.",
            code=ProblemCode.TOO_MANY_SIGNUPS,
            retry_after=retry_after,
        )
