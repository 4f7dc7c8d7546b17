"""A batch: one module run against many cases (stdin, args, env) in one request."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wasmwiz.sandbox import RunResult
from wasmwiz.sandbox.file_input import InputEntry
from wasmwiz.services.rate_limits import AdmittedRequest

# The module of a batch: its bytes as uploaded, or a stored module's id or name.
ModuleSource = bytes | memoryview | str


@dataclass(frozen=True, slots=True)
class BatchCase:
    stdin: bytes = b""
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """What every case of the batch shares, as a single run's form has it."""

    deterministic: bool = False
    seed: int = 0
    max_fuel: int | None = None
    # The run directory every case gets a fresh copy of, and what each case returns of it.
    files: tuple[InputEntry, ...] | None = None
    collect: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BatchRequest:
    module: ModuleSource
    cases: Sequence[BatchCase]
    options: BatchOptions = BatchOptions()
    program_name: str = "main.wasm"


@dataclass(frozen=True, slots=True)
class BatchReport:
    batch_id: uuid.UUID
    results: list[tuple[uuid.UUID, RunResult]]  # (execution id, result), in case order
    admission: AdmittedRequest
