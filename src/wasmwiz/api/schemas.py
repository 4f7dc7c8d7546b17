"""Wire format of the JSON API (responses only; the execute request is multipart)."""

from __future__ import annotations

import base64
import uuid
from enum import StrEnum

from pydantic import BaseModel, Field

from wasmwiz.sandbox import Outcome, RunResult


class OutputEncoding(StrEnum):
    UTF8 = "utf-8"
    BASE64 = "base64"


class CollectedFileResponse(BaseModel):
    path: str = Field(description="The file's path in the run's directory.")
    size: int = Field(description="Its size in bytes.")
    sha256: str = Field(description="The SHA-256 of its content, hex.")
    content: str | None = Field(
        description="Its content, base64; null when it did not fit in the collected files' "
        "output cap (FILES_MAX_OUTPUT_BYTES; `files_truncated` is then true)."
    )


class ExecutionResponse(BaseModel):
    execution_id: uuid.UUID
    status: Outcome = Field(description="How the run ended.")
    output: str = Field(description="stdout: UTF-8 (invalid bytes replaced) or base64.")
    error: str | None = Field(description="Null on success, otherwise why the run failed.")
    stderr: str = Field(description="stderr, encoded like `output`.")
    exit_code: int | None = Field(description="The guest's exit code; null when it trapped.")
    duration_ms: float
    fuel_consumed: int | None = Field(
        description="WebAssembly fuel (roughly instructions) used, counted only for a run "
        "with a fuel budget (`max_fuel`, or the tier's): null for any other run, which is "
        "not metered. After a `timeout` only a lower bound: what was counted up to the "
        "guest's last call or return (0 for a loop that never calls); "
        "`fuel_consumed_is_lower_bound` says so."
    )
    fuel_consumed_is_lower_bound: bool = Field(
        description="True when `fuel_consumed` is a lower bound (a metered run hit the time "
        "limit); false when it is exact or null."
    )
    memory_peak_bytes: int = Field(description="Peak size of the guest's linear memory.")
    output_truncated: bool
    stderr_truncated: bool
    encoding: OutputEncoding
    files: list[CollectedFileResponse] = Field(
        default_factory=list,
        description="The regular files the run left in its directory that `collect` "
        "matched, by path: whatever the outcome.",
    )
    files_truncated: bool = Field(
        default=False,
        description="True when some collected files' content is left out (null): they "
        "passed FILES_MAX_OUTPUT_BYTES together.",
    )
    cached: bool = Field(
        default=False,
        description="True when the answer came from the result cache: the same "
        "deterministic request (with a `seed`) ran lately, and nothing ran now. Every other "
        "member is that run's, `duration_ms` included.",
    )

    @classmethod
    def from_result(
        cls,
        execution_id: uuid.UUID,
        result: RunResult,
        encoding: OutputEncoding,
        *,
        cached: bool = False,
    ) -> ExecutionResponse:
        return cls(
            execution_id=execution_id,
            status=result.outcome,
            output=_encode(result.stdout, encoding),
            error=result.error,
            stderr=_encode(result.stderr, encoding),
            exit_code=result.exit_code,
            duration_ms=round(result.duration_seconds * 1000, 3),
            fuel_consumed=result.fuel_consumed,
            fuel_consumed_is_lower_bound=result.fuel_consumed_is_lower_bound,
            memory_peak_bytes=result.memory_peak_bytes,
            output_truncated=result.stdout_truncated,
            stderr_truncated=result.stderr_truncated,
            encoding=encoding,
            files=[
                CollectedFileResponse(
                    path=file.path,
                    size=file.size,
                    sha256=file.sha256,
                    content=None
                    if file.content is None
                    else base64.b64encode(file.content).decode("ascii"),
                )
                for file in result.files
            ],
            files_truncated=result.files_truncated,
            cached=cached,
        )


class BatchResponse(BaseModel):
    batch_id: uuid.UUID = Field(description="Every case's usage record carries it.")
    results: list[ExecutionResponse] = Field(
        description="One per case, in the order of `cases`, each exactly a single run's response."
    )


def _encode(data: bytes, encoding: OutputEncoding) -> str:
    if encoding is OutputEncoding.BASE64:
        return base64.b64encode(data).decode("ascii")
    return data.decode("utf-8", errors="replace")


class HealthCheck(BaseModel):
    name: str
    ok: bool
    detail: str | None = None


class HealthResponse(BaseModel):
    status: str = Field(description="`ok` when every check passed, otherwise `unavailable`.")
    checks: list[HealthCheck]
