"""What a sandbox job did, and when: for a caller that traces its runs (the service).

The sandbox knows nothing of traces: a caller hands `execute` a `StageTimes` and reads it
afterwards. The job fills it on its worker thread (wall-clock nanoseconds, as
`time.time_ns()`), and says how the module was prepared: from the memory cache, from the
disk cache, or by a compile worker (with the worker's CPU seconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum


class Prepared(StrEnum):
    MEMORY = "memory"  # compiled earlier by this process (or being compiled: it waited)
    DISK = "disk"  # the artifact loaded from the disk cache
    COMPILED = "compiled"  # compiled now by a compile worker


@dataclass(slots=True)
class StageTimes:
    """Zero: the stage never started (the job was refused or never left the queue)."""

    submitted_ns: int = 0
    prepare_started_ns: int = 0
    prepare_ended_ns: int = 0
    prepared: Prepared = Prepared.MEMORY
    compile_cpu_seconds: float = 0.0  # the compile worker's, when one compiled
    run_started_ns: int = 0
    run_ended_ns: int = 0


_local = threading.local()


def current_stages() -> StageTimes | None:
    stages: StageTimes | None = getattr(_local, "stages", None)
    return stages


@contextmanager
def preparing(stages: StageTimes | None) -> Iterator[None]:
    """Time a module's preparation on this thread; the caches and the compile pool note
    in `stages` how it was prepared."""
    if stages is None:
        yield
        return
    previous = current_stages()
    _local.stages = stages
    stages.prepare_started_ns = time.time_ns()
    try:
        yield
    finally:
        stages.prepare_ended_ns = time.time_ns()
        _local.stages = previous


@contextmanager
def running(stages: StageTimes | None) -> Iterator[None]:
    if stages is None:
        yield
        return
    stages.run_started_ns = time.time_ns()
    try:
        yield
    finally:
        stages.run_ended_ns = time.time_ns()


def note_prepared(how: Prepared, compile_cpu_seconds: float = 0.0) -> None:
    """Called where a module is loaded or compiled, on the job's thread."""
    stages = current_stages()
    if stages is not None:
        stages.prepared = how
        stages.compile_cpu_seconds = compile_cpu_seconds
