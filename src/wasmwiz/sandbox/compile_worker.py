"""The compile worker process: checks submitted bytes and compiles them to an artifact.

Run as `python -I -m wasmwiz.sandbox.compile_worker <rules-json>` by the service's
`CompilePool`, never by hand, with an empty environment. Everything whose cost grows
with an untrusted module happens here, not in the service: converting WebAssembly
text, reading the binary's shape, wasmtime's validation and the compilation itself. A
module shaped to take minutes or gigabytes costs one worker, which the kernel stops
(RLIMIT_CPU, RLIMIT_AS) or the service kills.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import resource
import sys
from typing import BinaryIO

import wasmtime

from wasmwiz.sandbox import validation
from wasmwiz.sandbox.compile_protocol import (
    COMPILED_META,
    EXIT_OUT_OF_MEMORY,
    REPLY,
    REQUEST,
    STATUS_COMPILED,
    STATUS_REFUSED,
    WorkerRules,
    encode_refusal,
)
from wasmwiz.sandbox.engine import engine_config
from wasmwiz.sandbox.models import ModuleRefused

_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    if len(data) < size:
        return None  # the service closed the pipe: exit quietly
    return data


def _cpu_seconds_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _limit_cpu(budget_seconds: float) -> None:
    """Let this job use `budget_seconds` more CPU time; SIGXCPU ends the process after.

    RLIMIT_CPU counts the process's whole life, so the soft limit is moved on before
    each job (it is whole seconds: the budget is rounded up).
    """
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(_cpu_seconds_used() + budget_seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def check_and_compile(data: bytes, rules: WorkerRules, engine: wasmtime.Engine) -> bytes:
    """The reply payload for a module that passes every check: metadata and artifact.

    Raises ModuleRefused. The checks run cheapest first, and all before compiling:
    text conversion, the size of the binary, the declared shape (validation.inspect),
    then wasmtime's validator, which also names a proposal the engine has turned off.
    """
    binary = validation.to_binary(data)
    validation.check_size(binary, rules.max_module_bytes)
    info = validation.inspect(
        binary,
        rules.inspection,
        max_memory_bytes=rules.max_memory_bytes,
        max_table_elements=rules.max_table_elements,
    )
    try:
        wasmtime.Module.validate(engine, binary)
        artifact = wasmtime.Module(engine, binary).serialize()
    except wasmtime.WasmtimeError as exc:
        raise validation.compile_error_message(str(exc)) from None
    meta = COMPILED_META.pack(
        len(binary), info.min_memory_bytes, max(info.table_min_elements, default=0)
    )
    return meta + bytes(artifact)


def serve(requests: BinaryIO, replies: BinaryIO, rules: WorkerRules) -> None:
    # The metered and the unmetered engine, each made on its first request.
    engines: dict[bool, wasmtime.Engine] = {}
    while (header := _read_exact(requests, REQUEST.size)) is not None:
        budget_ms, length, metered = REQUEST.unpack(header)
        data = _read_exact(requests, length)
        if data is None:
            return
        _limit_cpu(budget_ms / 1000)
        engine = engines.get(metered)
        if engine is None:
            engine = engines[metered] = wasmtime.Engine(
                engine_config(rules.extra_features, metered=metered)
            )
        payload: bytes
        try:
            status, payload = STATUS_COMPILED, check_and_compile(data, rules, engine)
        except ModuleRefused as refusal:
            status, payload = STATUS_REFUSED, encode_refusal(refusal)
        del data
        replies.write(REPLY.pack(status, len(payload)))
        replies.write(payload)
        replies.flush()


def _few_malloc_arenas() -> None:
    # What MALLOC_ARENA_MAX=2 does for the service, without putting it in an environment
    # that is meant to be empty: fewer arenas, less address space reserved per thread.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 2)


def main(argv: list[str]) -> None:
    rules = WorkerRules.from_json(argv[1])
    _few_malloc_arenas()
    resource.setrlimit(resource.RLIMIT_AS, (rules.address_space_bytes,) * 2)
    # The replies get a private copy of stdout, and fd 1 becomes stderr: nothing a
    # library prints can corrupt the protocol.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        serve(sys.stdin.buffer, replies, rules)
    except MemoryError:
        # Python's own allocations hit RLIMIT_AS (wasmtime's abort instead): say so by
        # the exit status, at once, without the traceback's further allocations.
        os._exit(EXIT_OUT_OF_MEMORY)


if __name__ == "__main__":
    main(sys.argv)
