"""A run's result as bytes, for the result cache and a job's row (jobs.result).

A length-prefixed JSON header followed by the byte strings it counts, in order: the bytes
(output, collected files) are kept as they are, never base64, and the header says how long
each is, so a value that does not add up is refused (ValueError), not misread. A job's
request uses the same framing (services/job_payload.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wasmwiz.sandbox import Outcome, RunResult
from wasmwiz.sandbox.models import CollectedFile

_HEADER_LENGTH_BYTES = 4


def frame(header: dict[str, Any], blobs: Sequence[bytes | memoryview]) -> bytes:
    header["blobs"] = [len(blob) for blob in blobs]
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return b"".join((len(encoded).to_bytes(_HEADER_LENGTH_BYTES, "big"), encoded, *blobs))


def unframe(body: bytes) -> tuple[dict[str, Any], list[bytes]]:
    size = int.from_bytes(body[:_HEADER_LENGTH_BYTES], "big")
    start = _HEADER_LENGTH_BYTES + size
    header = json.loads(body[_HEADER_LENGTH_BYTES:start])
    blobs = []
    for length in header["blobs"]:
        blobs.append(body[start : start + length])
        start += length
    if start != len(body):
        raise ValueError("the stored value's length does not match its header")
    return header, blobs


def encode_result(result: RunResult) -> bytes:
    blobs: list[bytes] = [result.stdout, result.stderr]
    files = []
    for collected in result.files:
        files.append(
            [collected.path, collected.size, collected.sha256, collected.content is not None]
        )
        if collected.content is not None:
            blobs.append(collected.content)
    header = {
        "outcome": result.outcome.value,
        "exit_code": result.exit_code,
        "stdout_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        "duration_seconds": result.duration_seconds,
        "fuel_consumed": result.fuel_consumed,
        "memory_peak_bytes": result.memory_peak_bytes,
        "error": result.error,
        "module_sha256": result.module_sha256,
        "module_size": result.module_size,
        "files": files,
        "files_truncated": result.files_truncated,
    }
    return frame(header, blobs)


def decode_result(body: bytes) -> RunResult:
    header, blobs = unframe(body)
    stdout, stderr, *contents = blobs
    remaining = iter(contents)
    fuel_consumed = header["fuel_consumed"]  # null: the run was not metered
    files = tuple(
        CollectedFile(path, int(size), sha256, next(remaining) if kept else None)
        for path, size, sha256, kept in header["files"]
    )
    return RunResult(
        outcome=Outcome(header["outcome"]),
        exit_code=header["exit_code"],
        stdout=stdout,
        stderr=stderr,
        stdout_truncated=bool(header["stdout_truncated"]),
        stderr_truncated=bool(header["stderr_truncated"]),
        duration_seconds=float(header["duration_seconds"]),
        fuel_consumed=None if fuel_consumed is None else int(fuel_consumed),
        memory_peak_bytes=int(header["memory_peak_bytes"]),
        error=header["error"],
        module_sha256=str(header["module_sha256"]),
        module_size=int(header["module_size"]),
        files=files,
        files_truncated=bool(header["files_truncated"]),
    )
