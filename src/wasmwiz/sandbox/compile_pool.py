"""Long-lived compile worker processes, each bounded in CPU time and address space.

A worker that overruns is killed (by the kernel on RLIMIT_CPU or RLIMIT_AS, or by us on
the wall-clock backstop) and replaced; the module gets compile_timeout or
compile_memory_limit. The service and its other requests are untouched: nothing of the
compilation ran in the service's process.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time

from wasmwiz.sandbox.compile_protocol import (
    EXIT_OUT_OF_MEMORY,
    REPLY,
    REQUEST,
    STATUS_COMPILED,
    STATUS_REFUSED,
    WORKER_MODULE,
)
from wasmwiz.sandbox.models import CompileLimits, ModuleRejected, SandboxError

logger = logging.getLogger(__name__)

# A compile gets this many times its CPU budget in wall time before it is killed from
# outside: CPU time is the budget, wall time only the backstop for a stuck worker.
WALL_CLOCK_FACTOR = 3
_CPU_SIGNALS = {int(signal.SIGXCPU)}
# What a process dying of an exhausted address space looks like: Rust aborts on a failed
# allocation, a failed mmap can surface as a fault, and the kernel's OOM killer sends KILL.
_MEMORY_SIGNALS = {int(s) for s in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGKILL)}


class CompiledArtifact(bytes):
    """wasmtime's serialized form of a module, as a worker returned it."""


class CompileRefused(Exception):
    """wasmtime in the worker refused the module (it does not validate); the message is its."""


class _WorkerGone(Exception):
    def __init__(self, timed_out: bool) -> None:
        super().__init__("compile worker ended")
        self.timed_out = timed_out


class _Worker:
    def __init__(self, limits: CompileLimits) -> None:
        self._limits = limits
        # Started with spawn semantics (a fresh interpreter via exec), never a bare fork of
        # this process: wasmtime's threads would not survive one. -I: no user site, no
        # PYTHON* variables and no current directory on the path.
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-I", "-m", WORKER_MODULE, str(limits.memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._stdin = self.process.stdin
        self._stdout_fd = self.process.stdout.fileno()

    def compile(self, binary: bytes) -> tuple[int, bytes]:
        budget = self._limits.timeout_seconds
        deadline = time.monotonic() + budget * WALL_CLOCK_FACTOR + 1
        try:
            self._stdin.write(REQUEST.pack(round(budget * 1000), len(binary)))
            self._stdin.write(binary)
            self._stdin.flush()
        except (BrokenPipeError, OSError):
            raise _WorkerGone(timed_out=False) from None
        status, length = REPLY.unpack(self._read(REPLY.size, deadline))
        return status, self._read(length, deadline)

    def _read(self, size: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        remaining = size
        while remaining:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([self._stdout_fd], [], [], wait)[0]:
                raise _WorkerGone(timed_out=True)
            chunk = os.read(self._stdout_fd, min(remaining, 1 << 20))
            if not chunk:
                raise _WorkerGone(timed_out=False)
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> int:
        """Stop the process (if still running) and return how it ended."""
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        return code

    def close(self) -> None:
        """Ask the worker to exit (end of input); kill it if it does not."""
        try:
            self._stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class CompilePool:
    """`limits.workers` worker processes, started on first use, each doing one job at a time."""

    def __init__(self, limits: CompileLimits) -> None:
        self._limits = limits
        self._idle: list[_Worker] = []
        self._live = 0
        self._closed = False
        self._eager = False
        self._available = threading.Condition()
        self.compiles = 0
        self.replaced = 0

    def prestart(self) -> None:
        """Start every worker now (without waiting for them), so no request pays for it.

        From then on a killed worker is replaced at once rather than on the next compile.
        """
        with self._available:
            self._eager = True
            while not self._closed and self._live < self._limits.workers:
                self._idle.append(_Worker(self._limits))
                self._live += 1
                self._available.notify()

    def compile(self, binary: bytes) -> CompiledArtifact:
        """The serialized artifact of `binary`, compiled in a worker.

        Raises CompileRefused when wasmtime refuses the module, and ModuleRejected
        (compile_timeout, compile_memory_limit) when the worker overran its limits.
        """
        worker = self._acquire()
        try:
            status, payload = worker.compile(binary)
        except _WorkerGone as gone:
            self._discard(worker)
            raise self._verdict(worker, gone) from None
        except BaseException:
            self._discard(worker)
            raise
        self._release(worker)
        self.compiles += 1
        if status == STATUS_COMPILED:
            return CompiledArtifact(payload)
        if status == STATUS_REFUSED:
            raise CompileRefused(payload.decode("utf-8", "replace"))
        raise SandboxError(f"compile worker sent an unknown status {status}")

    def _verdict(self, worker: _Worker, gone: _WorkerGone) -> ModuleRejected:
        code = worker.kill()
        died_of = -code if code < 0 else None
        logger.warning("compile worker stopped (exit %s, wall timeout %s)", code, gone.timed_out)
        budget = self._limits.timeout_seconds
        if gone.timed_out or died_of in _CPU_SIGNALS:
            return ModuleRejected(
                "compile_timeout", f"compiling the module took more than the {budget}s allowed"
            )
        if died_of in _MEMORY_SIGNALS or code == EXIT_OUT_OF_MEMORY:
            return ModuleRejected(
                "compile_memory_limit",
                f"compiling the module needed more than the "
                f"{self._limits.memory_bytes} bytes of memory allowed",
            )
        raise SandboxError(f"the compile worker failed (exit code {code})")

    def _acquire(self) -> _Worker:
        with self._available:
            while True:
                if self._closed:
                    raise SandboxError("the sandbox is closed")
                if self._idle:
                    return self._idle.pop()
                if self._live < self._limits.workers:
                    self._live += 1
                    break
                self._available.wait()
        try:
            return _Worker(self._limits)
        except BaseException:
            with self._available:
                self._live -= 1
                self._available.notify()
            raise

    def _release(self, worker: _Worker) -> None:
        with self._available:
            if self._closed:
                worker.close()
                return
            self._idle.append(worker)
            self._available.notify()

    def _discard(self, worker: _Worker) -> None:
        """Forget a worker that failed; a replacement starts now or on the next compile."""
        worker.kill()
        with self._available:
            self._live -= 1
            self.replaced += 1
            self._available.notify()
            eager = self._eager
        if eager:
            self.prestart()

    def close(self) -> None:
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._available.notify_all()
        for worker in idle:
            worker.close()
