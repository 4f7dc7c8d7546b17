"""What a queued job's run needs, as bytes for its row (job_payloads.content): the module
or its reference, stdin, args, env, the run's options and its input files, in the framing
of services/run_codec.py (a JSON header, then the byte strings as they are)."""

from __future__ import annotations

from wasmwiz.sandbox.file_input import InputEntry
from wasmwiz.services.executions import ExecutionRequest
from wasmwiz.services.run_codec import frame, unframe


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
    return frame(header, blobs)


def decode_request(body: bytes) -> ExecutionRequest:
    header, blobs = unframe(body)
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
