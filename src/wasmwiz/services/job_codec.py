"""A job's request and result as bytes, for its rows (jobs.result, job_payloads.content).

Both are a length-prefixed JSON header followed by the byte strings it counts, in order:
the bytes (a module, stdin, files, output) are kept as they are, never base64, and the
header says how long each is, so a row that does not add up is refused, not misread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wasmwiz.sandbox import Outcome, RunResult
from wasmwiz.sandbox.file_input import InputEntry
from wasmwiz.sandbox.models import CollectedFile
from wasmwiz.services.executions import ExecutionRequest

_HEADER_LENGTH_BYTES = 4


def _frame(header: dict[str, Any], blobs: Sequence[bytes | memoryview]) -> bytes:
    header["blobs"] = [len(blob) for blob in blobs]
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return b"".join((len(encoded).to_bytes(_HEADER_LENGTH_BYTES, "big"), encoded, *blobs))


def _unframe(body: bytes) -> tuple[dict[str, Any], list[bytes]]:
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


def encode_request(request: ExecutionRequest) -> bytes:
    blobs: list[bytes | memoryview] = [request.wasm or b"", request.stdin]
    files = None
    if request.files is not None:
        files = []
        for entry in request.files:
            files.append([entry.path, entry.data is not None])
            if entry.data is not None:
                blobs.append(entry.data)
    header = {
        "wasm": request.wasm is not None,
        "module": request.module,
        "args": list(request.args),
        "env": dict(request.env),
        "program_name": request.program_name,
        "deterministic": request.deterministic,
        "seed": request.seed,
        "max_fuel": request.max_fuel,
        "files": files,
        "collect": list(request.collect),
        "cache": request.cache,
    }
    return _frame(header, blobs)


def decode_request(body: bytes) -> ExecutionRequest:
    header, blobs = _unframe(body)
    wasm, stdin, *contents = blobs
    files = None
    if header["files"] is not None:
        remaining = iter(contents)
        files = tuple(
            InputEntry(path, next(remaining) if is_file else None)
            for path, is_file in header["files"]
        )
    return ExecutionRequest(
        wasm=wasm if header["wasm"] else None,
        module=header["module"],
        stdin=stdin,
        args=tuple(header["args"]),
        env=dict(header["env"]),
        program_name=header["program_name"],
        deterministic=bool(header["deterministic"]),
        seed=header["seed"],
        max_fuel=header["max_fuel"],
        files=files,
        collect=tuple(header["collect"]),
        cache=bool(header["cache"]),
    )


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
    return _frame(header, blobs)


def decode_result(body: bytes) -> RunResult:
    header, blobs = _unframe(body)
    stdout, stderr, *contents = blobs
    remaining = iter(contents)
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
        fuel_consumed=int(header["fuel_consumed"]),
        memory_peak_bytes=int(header["memory_peak_bytes"]),
        error=header["error"],
        module_sha256=str(header["module_sha256"]),
        module_size=int(header["module_size"]),
        files=files,
        files_truncated=bool(header["files_truncated"]),
    )
