"""The execution engine: runs untrusted WASI preview 1 modules in wasmtime within limits.

The names below that live outside `models` are imported on first use (PEP 562): the
compile worker (`python -I -m wasmwiz.sandbox.compile_worker`) runs this file first, and
a new worker process should not pay for the Sandbox, the compile pool and asyncio, which
it never uses. Workers start on demand and after every crash or kill.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wasmwiz.sandbox.models import (
    CompileLimits,
    FilesBudgetSpent,
    InspectionLimits,
    Limits,
    ModuleExport,
    ModuleImport,
    ModuleInterface,
    ModuleRefused,
    Outcome,
    RunRequest,
    RunResult,
    SandboxBusy,
    SandboxError,
    SandboxStats,
)

if TYPE_CHECKING:
    from wasmwiz.sandbox.compiler import CompiledModule
    from wasmwiz.sandbox.examples import example_names, load_example
    from wasmwiz.sandbox.sandbox import Sandbox
    from wasmwiz.sandbox.stages import Prepared, StageTimes

_LAZY = {
    "CompiledModule": "wasmwiz.sandbox.compiler",
    "example_names": "wasmwiz.sandbox.examples",
    "load_example": "wasmwiz.sandbox.examples",
    "Sandbox": "wasmwiz.sandbox.sandbox",
    "Prepared": "wasmwiz.sandbox.stages",
    "StageTimes": "wasmwiz.sandbox.stages",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CompileLimits",
    "CompiledModule",
    "FilesBudgetSpent",
    "InspectionLimits",
    "Limits",
    "ModuleExport",
    "ModuleImport",
    "ModuleInterface",
    "ModuleRefused",
    "Outcome",
    "Prepared",
    "RunRequest",
    "RunResult",
    "Sandbox",
    "SandboxBusy",
    "SandboxError",
    "SandboxStats",
    "StageTimes",
    "example_names",
    "load_example",
]
