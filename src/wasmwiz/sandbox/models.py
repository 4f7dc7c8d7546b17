"""The sandbox's value types: limits, run requests and results, and the error tree."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox.file_input import InputEntry
from wasmwiz.sandbox.memfs import ENTRY_COST


class Outcome(enum.StrEnum):
    """How a run ended. Every guest misbehaviour is an outcome, never an exception."""

    SUCCESS = "success"
    EXIT_NONZERO = "exit_nonzero"
    TRAP = "trap"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    STACK_OVERFLOW = "stack_overflow"
    OUTPUT_LIMIT = "output_limit"
    FUEL_EXHAUSTED = "fuel_exhausted"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one run may consume."""

    timeout_seconds: float = 5.0
    memory_bytes: int = 128 * 1024 * 1024
    max_output_bytes: int = 1024 * 1024  # per stream: stdout and stderr each
    # A fuel budget: the run ends fuel_exhausted when it is used up. None: no budget, and
    # no fuel is counted (the run's fuel_consumed is None; the deadline stops it).
    max_fuel: int | None = None
    # A run with files: what its directory may hold (input included), and how many bytes
    # of collected files the result carries.
    files_quota_bytes: int = 64 * 1024 * 1024
    files_max_entries: int = 10_000
    files_max_output_bytes: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.timeout_seconds > 0:
            raise ValueError("timeout_seconds must be positive")
        if min(self.files_quota_bytes, self.files_max_entries, self.files_max_output_bytes) < 0:
            raise ValueError("file limits must not be negative")
        if self.memory_bytes <= 0:
            raise ValueError("memory_bytes must be positive")
        if self.max_output_bytes < 0:
            raise ValueError("max_output_bytes must not be negative")
        if self.max_fuel is not None and not 0 < self.max_fuel < 2**64:
            raise ValueError("max_fuel must be between 1 and 2**64 - 1")

    @property
    def metered(self) -> bool:
        """Whether the run counts fuel: only a run with a budget pays for counting it."""
        return self.max_fuel is not None


@dataclass(frozen=True, slots=True)
class CompileLimits:
    """What compiling one module may cost; enforced on a separate worker process."""

    timeout_seconds: float = 10.0  # CPU seconds; a wall-clock backstop is a multiple of it
    memory_bytes: int = 2 * 1024 * 1024 * 1024  # the worker's address space (RLIMIT_AS)
    workers: int = 2

    def __post_init__(self) -> None:
        if not self.timeout_seconds > 0:
            raise ValueError("timeout_seconds must be positive")
        if self.memory_bytes <= 0 or self.workers < 1:
            raise ValueError("memory_bytes and workers must be positive")


@dataclass(frozen=True, slots=True)
class InspectionLimits:
    """Bounds on a module's declared shape, checked before any CPU is spent compiling it."""

    max_functions: int = 100_000
    max_function_locals: int = 10_000
    max_function_body_bytes: int = 1024 * 1024
    max_data_segments: int = 100_000
    # Each section's declared count is checked against these before its entries are read.
    max_types: int = 10_000
    max_imports: int = 1_000
    max_exports: int = 10_000
    max_memories: int = 16
    max_tables: int = 4  # a run's store allows 4 tables: more could never instantiate

    def __post_init__(self) -> None:
        if min(self.max_functions, self.max_function_locals, self.max_function_body_bytes,
               self.max_data_segments, self.max_types, self.max_imports, self.max_exports,
               self.max_memories, self.max_tables) < 1:  # fmt: skip
            raise ValueError("inspection bounds must be positive")


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What the caller hands the guest. Nothing of the host's environment is added."""

    stdin: bytes | memoryview = b""  # may be a view of the request's buffer; wasmtime copies it
    args: tuple[str, ...] = ()  # argv[0] (program_name) is prepended by the sandbox
    env: tuple[tuple[str, str], ...] = ()
    program_name: str = "main.wasm"
    # Virtual clocks and a seeded random_get: the same inputs give byte-identical output.
    deterministic: bool = False
    seed: int = 0
    # The run's directory, preopened at "/": None for none at all (no preopen), else its
    # entries, parents first (an empty tuple: an empty directory).
    files: tuple[InputEntry, ...] | None = None
    # Glob patterns (relative to the directory) of the files to return after the run.
    collect: tuple[str, ...] = ()

    @property
    def files_cost(self) -> int:
        """What the input takes of the files budget: its bytes, and ENTRY_COST per entry."""
        entries = self.files or ()
        return sum(
            ENTRY_COST + (len(entry.data) if entry.data is not None else 0) for entry in entries
        )

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**64:
            raise ValueError("seed must be between 0 and 2**64 - 1")
        # The C API takes NUL-terminated strings: an embedded NUL would silently cut a value.
        for text in (self.program_name, *self.args):
            if "\0" in text:
                raise ValueError("arguments must not contain NUL characters")
        for name, value in self.env:
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise ValueError(f"invalid environment variable name or value: {name!r}")


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything observed about one run."""

    outcome: Outcome
    exit_code: int | None  # 0 on success, the proc_exit code, None when trapped or stopped
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    duration_seconds: float  # wall time of instantiate + _start
    fuel_consumed: int | None  # None: not metered (the run had no fuel budget)
    memory_peak_bytes: int  # final size of the memory exported as "memory": it never shrinks
    error: str | None  # None on success, otherwise one short line
    module_sha256: str
    module_size: int  # size of the binary actually compiled
    files: tuple[CollectedFile, ...] = ()  # what `collect` matched, by path
    files_truncated: bool = False  # some matched files' content is left out (output cap)

    @property
    def fuel_consumed_is_lower_bound(self) -> bool:
        """A metered run stopped by the deadline: the epoch interrupt stops generated code
        before it stores its fuel register, so only the fuel counted up to its last call
        or return is known."""
        return self.fuel_consumed is not None and self.outcome is Outcome.TIMEOUT


@dataclass(frozen=True, slots=True)
class CollectedFile:
    """A regular file a run left in its directory, matched by `collect`."""

    path: str
    size: int
    sha256: str
    content: bytes | None  # None: left out, the collected files' output cap was reached


@dataclass(frozen=True, slots=True)
class SandboxStats:
    """A snapshot of the sandbox's load and compile cache."""

    in_flight: int
    queued: int
    cache_entries: int
    cache_bytes: int
    cache_hits: int
    cache_misses: int
    disk_cache_hits: int
    compiles: int  # modules compiled by a worker process
    compile_workers_replaced: int
    compile_worker_crashes: int = 0  # workers that died of a signal their limits do not explain
    # The same crashes by what killed the worker: a signal's name (SIGSEGV), or "exit"
    # for a worker that exited on its own. The usual crash signals are there from the
    # start, at 0, so a first crash is an increase that an alert sees.
    compile_worker_crashes_by_signal: Mapping[str, int] = field(default_factory=dict)
    capacity: int = 0  # runs that may be in flight at once (MAX_CONCURRENT_EXECUTIONS)


class SandboxError(Exception):
    """Base of the sandbox's errors: a host fault or a refused request, never a guest outcome.

    SandboxError
     +-- ModuleRefused    the submitted module is unacceptable (the caller's fault)
     +-- SandboxBusy      the run queue is full; try again later
     +-- CompileWorkerCrashed  a compile worker died of an unexplained signal
    """


class ModuleRefused(SandboxError):
    """The submitted bytes are not a module the sandbox will run.

    The engine's own refusal; the service turns it into `wasmwiz.errors.ModuleRejected`
    (or `PayloadTooLarge`). `code` is stable and machine-readable: one of
    `wasmwiz.problem_codes.MODULE_REFUSALS`.
    """

    def __init__(self, code: ProblemCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SandboxBusy(SandboxError):
    """Every worker is busy and the queue of waiting runs is full."""


class FilesBudgetSpent(SandboxBusy):
    """The run's input, with room to write, does not fit what all runs' directories may
    hold together (Sandbox's files budget)."""


class CompileWorkerCrashed(SandboxError):
    """A compile worker died of a signal its limits do not explain: a fault on our side
    (or an attack on the compiler), never a verdict on the module."""


@dataclass(frozen=True, slots=True)
class ModuleImport:
    module: str
    name: str
    kind: str  # func, memory, table, global


@dataclass(frozen=True, slots=True)
class ModuleExport:
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class ModuleInterface:
    """What a compiled module imports and exports."""

    imports: tuple[ModuleImport, ...]
    exports: tuple[ModuleExport, ...]

    @property
    def is_command(self) -> bool:
        """A WASI command: it exports `_start` and its memory, so it can be run."""
        exported = {(export.name, export.kind) for export in self.exports}
        return {("_start", "func"), ("memory", "memory")} <= exported
