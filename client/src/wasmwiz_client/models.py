"""What the service answers: runs (one or a batch) and the files they left, stored modules,
jobs, and the key's budgets."""

from __future__ import annotations

import base64
import enum
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from wasmwiz_client._files import write_collected


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
class CollectedFile:
    """A regular file the run left in its directory that `collect` matched.

    `path` is relative to the run's directory (`out/result.csv`); `sha256` is the hex
    SHA-256 of the whole file. `content` is its exact bytes, or None when the service left
    it out: the collected files' contents together passed its output cap
    (`ExecutionResult.files_truncated` is then true).
    """

    path: str
    size: int
    sha256: str
    content: bytes | None

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> CollectedFile:
        content = body.get("content")
        return cls(
            path=str(body["path"]),
            size=int(body["size"]),
            sha256=str(body["sha256"]),
            content=None if content is None else base64.b64decode(str(content), validate=True),
        )


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """One run. `stdout` and `stderr` are the exact bytes the program wrote; `files` are
    the files it left that `collect` asked for, in path order."""

    execution_id: uuid.UUID
    status: Outcome | str  # a str only for an outcome newer than this client
    stdout: bytes
    stderr: bytes
    exit_code: int | None
    error: str | None
    duration_ms: float
    # None: not metered (a run without a fuel budget). After a timeout, a lower bound:
    # see fuel_consumed_is_lower_bound.
    fuel_consumed: int | None
    memory_peak_bytes: int
    stdout_truncated: bool
    stderr_truncated: bool
    request_id: str | None
    rate_limit: RateLimit | None
    fuel_consumed_is_lower_bound: bool = False
    cached: bool = False  # answered from the service's result cache: nothing ran
    files: tuple[CollectedFile, ...] = ()
    files_truncated: bool = False  # some of `files` have no content: over the output cap

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

    def write_files(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the collected files under `directory` (made if missing), each at its path
        there, and return the paths written. Files without content (`files_truncated`)
        are skipped.

        A path that would leave the directory (absolute, `..`, …) or a symbolic link
        already in it on the way raises `UnsafePathError`, the paths before anything is
        written; the service never sends such a path, and this does not trust that it won't.
        """
        return write_collected(self.files, directory)

    @classmethod
    def from_response(cls, body: Mapping[str, Any], headers: Mapping[str, str]) -> ExecutionResult:
        encoding = body.get("encoding", "utf-8")
        status = str(body["status"])
        fuel_consumed = body.get("fuel_consumed")
        return cls(
            execution_id=uuid.UUID(str(body["execution_id"])),
            status=Outcome(status) if status in Outcome._value2member_map_ else status,
            stdout=_decode(str(body["output"]), encoding),
            stderr=_decode(str(body["stderr"]), encoding),
            exit_code=body.get("exit_code"),
            error=body.get("error"),
            duration_ms=float(body["duration_ms"]),
            fuel_consumed=None if fuel_consumed is None else int(fuel_consumed),
            memory_peak_bytes=int(body["memory_peak_bytes"]),
            stdout_truncated=bool(body["output_truncated"]),
            stderr_truncated=bool(body["stderr_truncated"]),
            request_id=headers.get("x-request-id"),
            rate_limit=RateLimit.from_headers(headers),
            fuel_consumed_is_lower_bound=bool(
                body.get(
                    "fuel_consumed_is_lower_bound",
                    fuel_consumed is not None and status == Outcome.TIMEOUT,
                )
            ),
            cached=bool(body.get("cached", False)),
            files=tuple(CollectedFile.from_response(item) for item in body.get("files") or ()),
            files_truncated=bool(body.get("files_truncated", False)),
        )


@dataclass(frozen=True, slots=True)
class BatchCase:
    """One case of a batch: what differs between runs of the same module.

    A field left None is not sent, so the batch's `defaults` (or the service's own: no
    stdin, no args, an empty environment) apply to it. `stdin` as bytes is sent byte for
    byte (base64 on the wire); as str, as UTF-8 text.
    """

    stdin: bytes | str | None = None
    args: Sequence[str] | None = None
    env: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One batch: a result for each case, in the order the cases were given."""

    batch_id: uuid.UUID
    results: list[ExecutionResult]

    @property
    def ok(self) -> bool:
        """True when every case ran to completion and exited with 0."""
        return all(result.ok for result in self.results)

    @classmethod
    def from_response(cls, body: Mapping[str, Any], headers: Mapping[str, str]) -> BatchResult:
        # The batch's request id and budgets are each case's: one request ran them all.
        return cls(
            batch_id=uuid.UUID(str(body["batch_id"])),
            results=[ExecutionResult.from_response(item, headers) for item in body["results"]],
        )


@dataclass(frozen=True, slots=True)
class ModuleImport:
    """What a stored module imports: `kind` is `func`, `memory`, `table` or `global`."""

    module: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class ModuleExport:
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class StoredModule:
    """A module kept by the service, to run by `id` or by one of its `names`.

    `id` is `sha256:` and the SHA-256 of the bytes as uploaded, so it can be computed
    before uploading; `is_command` says whether it can run (exports `_start` and memory).
    """

    id: str
    size: int
    created_at: datetime
    names: tuple[str, ...]
    imports: tuple[ModuleImport, ...]
    exports: tuple[ModuleExport, ...]
    is_command: bool

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> StoredModule:
        return cls(
            id=str(body["id"]),
            size=int(body["size"]),
            created_at=datetime.fromisoformat(str(body["created_at"])),
            names=tuple(str(name) for name in body["names"]),
            imports=tuple(
                ModuleImport(str(item["module"]), str(item["name"]), str(item["kind"]))
                for item in body["imports"]
            ),
            exports=tuple(
                ModuleExport(str(item["name"]), str(item["kind"])) for item in body["exports"]
            ),
            is_command=bool(body["is_command"]),
        )


@dataclass(frozen=True, slots=True)
class ModulePage:
    """A page of stored modules, newest first; `next_cursor` is None on the last."""

    items: tuple[StoredModule, ...]
    next_cursor: str | None

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> ModulePage:
        cursor = body["next_cursor"]
        return cls(
            items=tuple(StoredModule.from_response(item) for item in body["items"]),
            next_cursor=str(cursor) if cursor is not None else None,
        )


class JobState(enum.StrEnum):
    """Where a job is. `queued` and `running` change; the other four are final."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"  # it ran: `result` says how (a trap or a timeout is a result too)
    FAILED = "failed"  # it could not be run: `error` says why
    CANCELLED = "cancelled"
    EXPIRED = "expired"


FINAL_JOB_STATES = frozenset(
    {JobState.FINISHED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}
)


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed: a stable `code` and a `detail` for people."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class Job:
    """A run the service queued to do later (`submit`), and where it is.

    `result` is set once the job is `finished`: the same `ExecutionResult` an `execute`
    answers, without `request_id` or `rate_limit` (they belong to the request that ran
    it). `error` is set once it `failed`.
    """

    id: uuid.UUID
    state: JobState | str  # a str only for a state newer than this client
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    attempts: int
    timeout_seconds: float
    callback_url: str | None
    result: ExecutionResult | None
    error: JobError | None

    @property
    def done(self) -> bool:
        """True in a final state: finished, failed, cancelled or expired.

        A state this client does not know counts as not done, so `wait` keeps polling
        until the time it was given runs out rather than returning a job it cannot read.
        """
        return self.state in FINAL_JOB_STATES

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> Job:
        state = str(body["state"])
        result, error = body.get("result"), body.get("error")
        return cls(
            id=uuid.UUID(str(body["id"])),
            state=JobState(state) if state in JobState._value2member_map_ else state,
            created_at=datetime.fromisoformat(str(body["created_at"])),
            started_at=_optional_time(body.get("started_at")),
            finished_at=_optional_time(body.get("finished_at")),
            expires_at=_optional_time(body.get("expires_at")),
            attempts=int(body["attempts"]),
            timeout_seconds=float(body["timeout_seconds"]),
            callback_url=_optional_str(body.get("callback_url")),
            result=None if result is None else ExecutionResult.from_response(result, {}),
            error=None if error is None else JobError(str(error["code"]), str(error["detail"])),
        )


@dataclass(frozen=True, slots=True)
class JobPage:
    """A page of jobs, newest first; `next_cursor` is None on the last."""

    items: tuple[Job, ...]
    next_cursor: str | None

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> JobPage:
        cursor = body["next_cursor"]
        return cls(
            items=tuple(Job.from_response(item) for item in body["items"]),
            next_cursor=str(cursor) if cursor is not None else None,
        )


def _decode(value: str, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(value)
    return value.encode("utf-8")


def _optional_int(value: str | None) -> int | None:
    return int(value) if value is not None else None


def _optional_time(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
