"""Who is asking: the authenticated caller, what it may do, and the limits that apply."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from wasmwiz.errors import InvalidRequest, PermissionDenied
from wasmwiz.problem_codes import ProblemCode


class Scope(enum.StrEnum):
    """What an API key may do; each API route requires one (api.dependencies)."""

    EXECUTE = "execute"
    """Run programs: POST /api/v1/execute."""
    USAGE_READ = "usage:read"
    """Read the account's usage: GET /api/v1/usage."""
    KEYS_WRITE = "keys:write"
    """List, create and revoke the account's keys: /api/v1/keys."""
    ADMIN = "admin"
    """The admin API (/api/v1/admin/...); only an admin's key can hold it."""


_SCOPE_NAMES = frozenset(scope.value for scope in Scope)
DEFAULT_KEY_SCOPES = frozenset({Scope.EXECUTE, Scope.USAGE_READ})
# A signed-in browser acts as its user in full, except for the admin API (keys only).
SESSION_SCOPES = frozenset({Scope.EXECUTE, Scope.USAGE_READ, Scope.KEYS_WRITE})


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from user input (names, or space-separated lists of them); 400 if unknown."""
    scopes: set[Scope] = set()
    for value in values:
        for name in value.split():
            try:
                scopes.add(Scope(name))
            except ValueError:
                known = ", ".join(scope.value for scope in Scope)
                raise InvalidRequest(
                    f"Unknown scope {name!r}; the scopes are: {known}.",
                    code=ProblemCode.INVALID_SCOPE,
                ) from None
    return frozenset(scopes)


def stored_scopes(column: str) -> frozenset[Scope]:
    """Scopes as stored on a key; a name this version does not know grants nothing."""
    return frozenset(Scope(name) for name in column.split() if name in _SCOPE_NAMES)


def format_scopes(scopes: Iterable[Scope]) -> str:
    """The stored (and displayed) form: space-separated, in Scope's order."""
    chosen = set(scopes)
    return " ".join(scope.value for scope in Scope if scope in chosen)


@dataclass(frozen=True, slots=True)
class TierLimits:
    name: str
    requests_per_minute: int
    requests_per_day: int
    max_concurrent_executions: int
    max_fuel: int | None
    max_api_keys: int = 5
    compile_seconds_per_minute: int = 60  # CPU seconds of compiling (migration 0007)
    max_stored_modules: int = 100  # the storage quota (migration 0008)
    max_stored_module_bytes: int = 500 * 1024 * 1024
    job_timeout_seconds: int = 5  # the job limits (migration 0010, docs/jobs.md)
    max_queued_jobs: int = 10
    job_result_seconds: int = 3600
    # The tier's own request budget (migration 0013); None: the server's.
    api_requests_per_minute: int | None = None
    api_requests_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """A key's own limits, lower than its account's; None: the account's apply alone."""

    requests_per_minute: int | None = None
    requests_per_day: int | None = None
    max_concurrent_executions: int | None = None

    @property
    def any(self) -> bool:
        return any(
            limit is not None
            for limit in (
                self.requests_per_minute,
                self.requests_per_day,
                self.max_concurrent_executions,
            )
        )


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    email: str
    tier: TierLimits
    api_key_id: uuid.UUID | None = None
    scopes: frozenset[Scope] = SESSION_SCOPES
    key_limits: KeyLimits | None = None
    is_admin: bool = False
    # Limits are the account's: every key and the web pages share one budget, named by the
    # user. Worked out once: the gate asks for it several times a request.
    rate_limit_key: str = field(init=False, repr=False, compare=False)
    # A key with limits of its own also has a budget of its own, nested in the account's.
    key_budget_key: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        account = f"user:{self.user_id}"
        object.__setattr__(self, "rate_limit_key", account)
        own = self.api_key_id is not None and self.key_limits is not None and self.key_limits.any
        object.__setattr__(
            self, "key_budget_key", f"{account}/key:{self.api_key_id}" if own else None
        )

    def require(self, scope: Scope) -> None:
        """Refuse with 403 `insufficient_scope` unless this caller holds `scope`."""
        if scope not in self.scopes:
            raise PermissionDenied(
                f"This API key lacks the `{scope.value}` scope; "
                "create a key with it (web page API keys, or POST /api/v1/keys).",
                code=ProblemCode.INSUFFICIENT_SCOPE,
            )
        if scope is Scope.ADMIN and not self.is_admin:
            raise PermissionDenied(
                "Only an administrator's key can use the admin API.",
                code=ProblemCode.INSUFFICIENT_SCOPE,
            )
