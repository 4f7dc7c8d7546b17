"""What an execution returns: the program's output, how it ended, and the key's budgets."""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Outcome(enum.StrEnum):
    """How a run ended. Only `success` and `exit_nonzero` mean the program finished itself."""

    SUCCESS = "success"
    EXIT_NONZERO = "exit_nonzero"
    TRAP = "trap"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    STACK_OVERFLOW = "stack_overflow"
    OUTPUT_LIMIT = "output_limit"
    FUEL_EXHAUSTED = "fuel_exhausted"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The key's budgets after this request, from the `X-RateLimit-*` headers."""

    limit: int
    remaining: int
    reset_seconds: int
    daily_limit: int | None
    daily_remaining: int | None
    daily_reset_seconds: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        # Absent when the request never reached the limiter (or it runs fail-open).
        try:
            return cls(
                limit=int(headers["x-ratelimit-limit"]),
                remaining=int(headers["x-ratelimit-remaining"]),
                reset_seconds=int(headers["x-ratelimit-reset"]),
                daily_limit=_optional_int(headers.get("x-ratelimit-daily-limit")),
                daily_remaining=_optional_int(headers.get("x-ratelimit-daily-remaining")),
                daily_reset_seconds=_optional_int(headers.get("x-ratelimit-daily-reset")),
            )
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """One run. `stdout` and `stderr` are the exact bytes the program wrote."""

    execution_id: uuid.UUID
    status: Outcome | str  # a str only for an outcome newer than this client
    stdout: bytes
    stderr: bytes
    exit_code: int | None
    error: str | None
    duration_ms: float
    fuel_consumed: int  # after a timeout, a lower bound: see fuel_consumed_is_lower_bound
    memory_peak_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    request_id: str | None
    rate_limit: RateLimit | None
    fuel_consumed_is_lower_bound: bool = False

    @property
    def ok(self) -> bool:
        """True when the program ran to completion and exited with 0."""
        return self.status == Outcome.SUCCESS

    @property
    def finished(self) -> bool:
        """True when the program ended on its own (any exit code), not stopped by a limit."""
        return self.status in (Outcome.SUCCESS, Outcome.EXIT_NONZERO)

    @property
    def text(self) -> str:
        """stdout as text (invalid UTF-8 replaced)."""
        return self.stdout.decode("utf-8", errors="replace")

    @classmethod
    def from_response(cls, body: Mapping[str, Any], headers: Mapping[str, str]) -> ExecutionResult:
        encoding = body.get("encoding", "utf-8")
        status = str(body["status"])
        return cls(
            execution_id=uuid.UUID(str(body["execution_id"])),
            status=Outcome(status) if status in Outcome._value2member_map_ else status,
            stdout=_decode(str(body["output"]), encoding),
            stderr=_decode(str(body["stderr"]), encoding),
            exit_code=body.get("exit_code"),
            error=body.get("error"),
            duration_ms=float(body["duration_ms"]),
            fuel_consumed=int(body["fuel_consumed"]),
            memory_peak_bytes=int(body["memory_peak_bytes"]),
            stdout_truncated=bool(body["output_truncated"]),
            stderr_truncated=bool(body["stderr_truncated"]),
            request_id=headers.get("x-request-id"),
            rate_limit=RateLimit.from_headers(headers),
            fuel_consumed_is_lower_bound=bool(
                body.get("fuel_consumed_is_lower_bound", status == Outcome.TIMEOUT)
            ),
        )


def _decode(value: str, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(value)
    return value.encode("utf-8")


def _optional_int(value: str | None) -> int | None:
    return int(value) if value is not None else None
