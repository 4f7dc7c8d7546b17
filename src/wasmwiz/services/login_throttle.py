"""Throttles sign-in attempts per account and per client address, on the rate limiter."""

from __future__ import annotations

import logging

from wasmwiz.errors import LimitExceeded, ServiceUnavailable
from wasmwiz.persistence.repositories.users import normalize_email
from wasmwiz.ratelimit import Quota, RateLimiter, RateLimiterUnavailable

security_log = logging.getLogger("wasmwiz.security")
# A day allows this many minutes' worth of attempts: slow guessing is capped too.
_DAILY_MULTIPLE = 20
_UNAVAILABLE_RETRY_AFTER = 5


class LoginThrottle:
    def __init__(
        self,
        limiter: RateLimiter,
        *,
        per_account_per_minute: int,
        per_ip_per_minute: int,
        fail_open: bool,
    ) -> None:
        self._limiter = limiter
        self._account = Quota(per_account_per_minute, per_account_per_minute * _DAILY_MULTIPLE)
        self._ip = Quota(per_ip_per_minute, per_ip_per_minute * _DAILY_MULTIPLE)
        self._fail_open = fail_open

    async def attempt(self, email: str, client_ip: str) -> None:
        """Spend one attempt for the account and one for the address, or refuse with 429.

        Every attempt counts, successful or not: checking first and charging only
        failures would let parallel guesses all pass the check.
        """
        checks = [
            (f"login:ip:{client_ip}", self._ip, "ip"),
            (f"login:acct:{normalize_email(email)}", self._account, "account"),
        ]
        for key, quota, scope in checks:
            try:
                decision = await self._limiter.consume(key, quota)
            except RateLimiterUnavailable:
                if self._fail_open:
                    return
                raise ServiceUnavailable(
                    "Sign-in is temporarily unavailable; try again shortly.",
                    code="rate_limiter_unavailable",
                    retry_after=_UNAVAILABLE_RETRY_AFTER,
                ) from None
            if not decision.allowed:
                retry_after = decision.retry_after_seconds or 60
                security_log.warning(
                    "sign-in throttled per %s",
                    scope,
                    extra={"event": "login_throttled", "scope": scope, "client_ip": client_ip},
                )
                raise LimitExceeded(
                    f"Too many sign-in attempts; try again in {retry_after} seconds.",
                    code="too_many_login_attempts",
                    retry_after=retry_after,
                )
