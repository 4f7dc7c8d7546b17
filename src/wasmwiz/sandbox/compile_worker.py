"""The compile worker process: turns wasm bytes into wasmtime's serialized artifact.

Run as `python -I -m wasmwiz.sandbox.compile_worker <address-space-bytes>` by the
service's `CompilePool`, never by hand. Compiling untrusted modules here rather than in
the service means a module shaped to take minutes or gigabytes to compile costs one
worker, which the kernel stops (RLIMIT_CPU, RLIMIT_AS) or the service kills.
"""

from __future__ import annotations

import math
import os
import resource
import sys
from typing import BinaryIO

import wasmtime

from wasmwiz.sandbox.compile_protocol import (
    EXIT_OUT_OF_MEMORY,
    REPLY,
    REQUEST,
    STATUS_COMPILED,
    STATUS_REFUSED,
)
from wasmwiz.sandbox.engine import engine_config


def _read_exact(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    if len(data) < size:
        return None  # the service closed the pipe: exit quietly
    return data


def _cpu_seconds_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _limit_cpu(budget_seconds: float) -> None:
    """Let this compile use `budget_seconds` more CPU time; SIGXCPU ends the process after.

    RLIMIT_CPU counts the process's whole life, so the soft limit is moved on before
    each job (it is whole seconds: the budget is rounded up).
    """
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(_cpu_seconds_used() + budget_seconds)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def serve(requests: BinaryIO, replies: BinaryIO, engine: wasmtime.Engine) -> None:
    while (header := _read_exact(requests, REQUEST.size)) is not None:
        budget_ms, length = REQUEST.unpack(header)
        binary = _read_exact(requests, length)
        if binary is None:
            return
        _limit_cpu(budget_ms / 1000)
        payload: bytes
        try:
            status, payload = STATUS_COMPILED, bytes(wasmtime.Module(engine, binary).serialize())
        except wasmtime.WasmtimeError as exc:
            status, payload = STATUS_REFUSED, str(exc).encode("utf-8", "replace")
        replies.write(REPLY.pack(status, len(payload)))
        replies.write(payload)
        replies.flush()


def main(argv: list[str]) -> None:
    address_space = int(argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    # The replies get a private copy of stdout, and fd 1 becomes stderr: nothing a
    # library prints can corrupt the protocol.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    engine = wasmtime.Engine(engine_config())
    try:
        serve(sys.stdin.buffer, replies, engine)
    except MemoryError:
        # Python's own allocations hit RLIMIT_AS (wasmtime's abort instead): say so by
        # the exit status, at once, without the traceback's further allocations.
        os._exit(EXIT_OUT_OF_MEMORY)


if __name__ == "__main__":
    main(sys.argv)
