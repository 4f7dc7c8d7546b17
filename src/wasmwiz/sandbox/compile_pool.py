"""Long-lived compile worker processes, each bounded in CPU time and address space.

A worker that overruns is killed (by the kernel on RLIMIT_CPU or RLIMIT_AS, or by us on
the wall-clock backstop) and replaced; the module gets compile_timeout or
compile_memory_limit. The service and its other requests are untouched: nothing of the
checks or the compilation ran in the service's process.

A worker that dies of any other signal (a segfault in the compiler, an abort that its
memory use does not explain) is a crash: the request gets CompileWorkerCrashed (an
internal error), nothing is remembered about the module, the crash is counted and logged
as a security event, since a module that crashes the compiler may be an attack on it.
How an abort is told apart from running out of memory: a process stopped by RLIMIT_AS
had grown to its limit, so its peak resident size (ru_maxrss from wait4) is close to it;
a crash of a worker well below its limit is not memory exhaustion, whatever the signal.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox.artifacts import ArtifactMeta
from wasmwiz.sandbox.compile_account import current_account
from wasmwiz.sandbox.compile_protocol import (
    COMPILED_META,
    EXIT_OUT_OF_MEMORY,
    REPLY,
    REQUEST,
    STATUS_COMPILED,
    STATUS_REFUSED,
    WORKER_MODULE,
    WorkerRules,
    decode_refusal,
)
from wasmwiz.sandbox.models import (
    CompileLimits,
    CompileWorkerCrashed,
    ModuleRefused,
    SandboxError,
)
from wasmwiz.sandbox.stages import Prepared, note_prepared
from wasmwiz.sandbox.workers import current_key

logger = logging.getLogger(__name__)
security_log = logging.getLogger("wasmwiz.security")

# A compile gets this many times its CPU budget in wall time before it is killed from
# outside: CPU time is the budget, wall time only the backstop for a stuck worker.
WALL_CLOCK_FACTOR = 3
_CPU_SIGNALS = {int(signal.SIGXCPU)}
# How a process dies of an exhausted address space: Rust aborts on a failed allocation,
# a failed mmap can surface as a fault, the kernel's OOM killer sends KILL. Each counts
# as memory exhaustion only with the evidence below.
_MEMORY_SIGNALS = {int(s) for s in (signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGKILL)}
# Peak resident size, as a share of the address-space limit, from which a death by one
# of those signals is put down to memory: workers that hit the limit peak close to it,
# far above an idle worker (docs/security.md has the measured shares).
MEMORY_EVIDENCE_SHARE = 0.75
_VALID_SIGNALS = {int(s) for s in signal.Signals}
# Crashes are counted by what killed the worker; these are counted from the start, at 0.
CRASH_CAUSES = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGABRT", "SIGFPE", "SIGKILL", "SIGSYS", "exit")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# When each account was last given a compile worker is kept for this many accounts.
_REMEMBERED_ACCOUNTS = 4096
# The worker as a command line; tests may run another (a seam, see CompilePool).
DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-I", "-m", WORKER_MODULE)


@dataclass(frozen=True, slots=True)
class CompileOutput:
    """A module a worker accepted: what the runner needs to know of it, and its artifact."""

    meta: ArtifactMeta
    artifact: bytes


class _WorkerGone(Exception):
    def __init__(self, timed_out: bool) -> None:
        super().__init__("compile worker ended")
        self.timed_out = timed_out


class _Worker:
    def __init__(self, limits: CompileLimits, rules: WorkerRules, command: Sequence[str]) -> None:
        self._limits = limits
        # Started with spawn semantics (a fresh interpreter via exec), never a bare fork of
        # this process: wasmtime's threads would not survive one. -I: no user site, no
        # PYTHON* variables and no current directory on the path. An empty environment:
        # the service's secrets (API_SALT, DATABASE_URL, REDIS_URL…) never reach code
        # that runs next to a compiler fed untrusted input.
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*command, rules.to_json()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env={},
            cwd="/",
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self._stdin = self.process.stdin
        self._stdout_fd = self.process.stdout.fileno()
        self.peak_rss_bytes = 0

    def compile(self, binary: bytes | memoryview, metered: bool) -> tuple[int, bytes]:
        budget = self._limits.timeout_seconds
        deadline = time.monotonic() + budget * WALL_CLOCK_FACTOR + 1
        try:
            self._stdin.write(REQUEST.pack(round(budget * 1000), len(binary), metered))
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
        """Stop the process (if still running) and return how it ended.

        Reaped with wait4 to learn its peak resident size (`peak_rss_bytes`).
        """
        if self.process.returncode is None:
            # Not Popen.kill(): it polls first, which would reap the process and lose its
            # resource usage. Unreaped, the pid cannot have been reused.
            os.kill(self.process.pid, signal.SIGKILL)
            try:
                _, status, usage = os.wait4(self.process.pid, 0)
            except ChildProcessError:
                self.process.wait()
            else:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                self.peak_rss_bytes = usage.ru_maxrss * 1024  # kilobytes on Linux
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


def _cpu_seconds(worker: _Worker) -> float:
    """The worker process's CPU time so far (all its threads: wasmtime compiles in parallel)."""
    try:
        with open(f"/proc/{worker.process.pid}/stat") as file:
            stat = file.read()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class CompilePool:
    """`limits.workers` worker processes, each doing one job at a time: all started by
    `prestart` (the app does so unless COMPILE_WORKERS_AT_START is false), or each on the
    first compile that finds no idle one.

    `command` runs the worker (the interpreter and module by default); a test may put a
    wrapper in front of the real worker, which receives `rules` as its last argument.
    """

    def __init__(
        self,
        limits: CompileLimits,
        rules: WorkerRules,
        *,
        command: Sequence[str] = DEFAULT_COMMAND,
    ) -> None:
        self._limits = limits
        self._rules = rules
        self._command = tuple(command)
        self._idle: list[_Worker] = []
        self._live = 0
        self._closed = False
        self._eager = False
        self._available = threading.Condition()
        # Waiting compiles per account, and when each account was last served (see
        # _acquire and _is_next).
        self._turns: dict[str, collections.deque[object]] = {}
        self._served: dict[str, int] = {}
        self._serves = 0
        self.compiles = 0
        self.replaced = 0
        self.crashes = 0
        self.crashes_by_signal = dict.fromkeys(CRASH_CAUSES, 0)

    def crash_counts(self) -> dict[str, int]:
        """Crashes so far by what killed the worker (see CRASH_CAUSES)."""
        with self._available:
            return dict(self.crashes_by_signal)

    def _new_worker(self) -> _Worker:
        return _Worker(self._limits, self._rules, self._command)

    def prestart(self) -> None:
        """Start every worker now (without waiting for them), so no request pays for it.

        From then on a killed worker is replaced at once rather than on the next compile.
        """
        with self._available:
            self._eager = True
            while not self._closed and self._live < self._limits.workers:
                self._idle.append(self._new_worker())
                self._live += 1
                self._available.notify()

    def compile(self, data: bytes | memoryview, *, metered: bool) -> CompileOutput:
        """Check and compile `data` (as submitted: binary or text) in a worker, for the
        fuel-metered engine or the unmetered one.

        Raises ModuleRefused when a check refuses the module or the worker overran its
        limits (compile_timeout, compile_memory_limit), and CompileWorkerCrashed when the
        worker died for any other reason.
        """
        account = current_account()
        if account is not None:
            account.check()  # raises CompileBudgetExceeded before waiting for a worker
        worker = self._acquire()
        cpu_started = _cpu_seconds(worker)
        try:
            status, payload = worker.compile(data, metered)
        except _WorkerGone as gone:
            if account is not None:  # overran or crashed: charged its whole CPU limit
                account.charge(self._limits.timeout_seconds)
            self._discard(worker)
            raise self._verdict(worker, gone) from None
        except BaseException:
            self._discard(worker)
            raise
        spent = _cpu_seconds(worker) - cpu_started
        if account is not None:
            account.charge(spent)
        note_prepared(Prepared.COMPILED, spent)
        self._release(worker)
        if status == STATUS_COMPILED and len(payload) > COMPILED_META.size:
            self.compiles += 1
            size, min_memory, min_table = COMPILED_META.unpack_from(payload)
            return CompileOutput(
                ArtifactMeta(size=size, min_memory_bytes=min_memory, min_table_elements=min_table),
                payload[COMPILED_META.size :],
            )
        refusal = None
        if status == STATUS_REFUSED:
            try:
                refusal = decode_refusal(payload)
            except (ValueError, KeyError, TypeError):
                refusal = None
        if refusal is not None:
            raise refusal
        raise SandboxError(f"compile worker sent a malformed reply (status {status})")

    def _verdict(self, worker: _Worker, gone: _WorkerGone) -> SandboxError:
        code = worker.kill()
        died_of = -code if code < 0 else None
        budget = self._limits.timeout_seconds
        memory = self._limits.memory_bytes
        logger.warning(
            "compile worker stopped (exit %s, wall timeout %s, peak RSS %d bytes)",
            code, gone.timed_out, worker.peak_rss_bytes,
        )  # fmt: skip
        if gone.timed_out or died_of in _CPU_SIGNALS:
            return ModuleRefused(
                ProblemCode.COMPILE_TIMEOUT,
                f"compiling the module took more than the {budget}s allowed",
            )
        near_limit = worker.peak_rss_bytes >= memory * MEMORY_EVIDENCE_SHARE
        if code == EXIT_OUT_OF_MEMORY or (died_of in _MEMORY_SIGNALS and near_limit):
            return ModuleRefused(
                ProblemCode.COMPILE_MEMORY_LIMIT,
                f"compiling the module needed more than the {memory} bytes of memory allowed",
            )
        described = signal.Signals(died_of).name if died_of in _VALID_SIGNALS else f"exit {code}"
        # A bounded label: a signal's name, "exit", or "other" for a signal Python cannot name.
        cause = described if died_of in _VALID_SIGNALS else "exit" if died_of is None else "other"
        with self._available:
            self.crashes += 1
            self.crashes_by_signal[cause] = self.crashes_by_signal.get(cause, 0) + 1
        security_log.warning(
            "compile worker crashed (%s) while checking or compiling a module",
            described,
            extra={
                "event": "compile_worker_crash",
                "exit": code,
                "peak_rss_bytes": worker.peak_rss_bytes,
            },
        )
        return CompileWorkerCrashed(f"the compile worker crashed ({described})")

    def _acquire(self) -> _Worker:
        # Compiles waiting for a worker take turns across accounts (the fairness key of
        # the job on this thread), FIFO within one: an account with many large modules
        # waiting delays another account's compile by at most the compiles already
        # running when it arrived.
        key = current_key()
        ticket = object()
        with self._available:
            self._turns.setdefault(key, collections.deque()).append(ticket)
            try:
                while True:
                    if self._closed:
                        raise SandboxError("the sandbox is closed")
                    free = bool(self._idle) or self._live < self._limits.workers
                    if free and self._is_next(key, ticket):
                        break
                    if free:
                        # Woken for a worker that is not ours: wake whose turn it is.
                        self._available.notify_all()
                    self._available.wait()
            finally:
                self._take_turn(key, ticket)
            if self._turns and (self._idle[1:] or self._live < self._limits.workers):
                self._available.notify_all()  # more free workers than this one
            if self._idle:
                return self._idle.pop()
            self._live += 1
        try:
            return self._new_worker()
        except BaseException:
            with self._available:
                self._live -= 1
                self._available.notify()
            raise

    def _is_next(self, key: str, ticket: object) -> bool:
        """Whether `ticket` goes next: the oldest of the account served longest ago.

        Accounts never served (or not lately) come first, in the order they began to
        wait. So an account that has just had a compile waits behind every account that
        is waiting, however early its own requests came.
        """
        turn = min(self._turns, key=lambda waiting: self._served.get(waiting, -1))
        return turn == key and self._turns[key][0] is ticket

    def _take_turn(self, key: str, ticket: object) -> None:
        queue = self._turns[key]
        if queue[0] is ticket:
            queue.popleft()
            self._serves += 1
            self._served[key] = self._serves
            if len(self._served) > _REMEMBERED_ACCOUNTS:
                self._served = {k: n for k, n in self._served.items() if k in self._turns}
        else:
            queue.remove(ticket)  # left unserved: closed, or interrupted
        if not queue:
            del self._turns[key]

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
