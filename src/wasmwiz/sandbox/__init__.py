"""The execution engine: runs untrusted WASI preview 1 modules in wasmtime within limits."""

from wasmwiz.sandbox.compiler import CompiledModule
from wasmwiz.sandbox.examples import example_names, load_example
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
from wasmwiz.sandbox.sandbox import Sandbox
from wasmwiz.sandbox.stages import Prepared, StageTimes

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
