"""The byte protocol between the service and its compile workers, shared by both sides.

A worker is started with its rules (`WorkerRules`, as JSON in its one argument): the
checks every module must pass and the engines' features. A request is a header (CPU
budget in milliseconds, payload length, and whether to compile for the fuel-metered
engine or the unmetered one: their artifacts differ) and the submitted bytes, binary or
text, as the client sent them. A reply is a header (status, payload length) and either the module's
metadata and wasmtime's serialized artifact, or a refusal: its code and message as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass

from wasmwiz.problem_codes import MODULE_REFUSALS
from wasmwiz.sandbox.models import InspectionLimits, ModuleRefused

REQUEST = struct.Struct("<QQ?")
REPLY = struct.Struct("<BQ")
# Before a compiled artifact: the binary's size, its declared minimum memory in bytes
# and its largest declared table minimum (what the runner needs to know of it).
COMPILED_META = struct.Struct("<QQQ")

STATUS_COMPILED = 0
STATUS_REFUSED = 1

# The worker's exit status when Python itself ran out of memory (a MemoryError under its
# address-space limit), which the service reports like the kernel's stop for the same
# cause: compile_memory_limit. Any other exit status is the worker's own failure.
EXIT_OUT_OF_MEMORY = 3

WORKER_MODULE = "wasmwiz.sandbox.compile_worker"

# A refusal read back from a worker is shown to clients: its code must be one the engine
# refuses modules with and its message is cut to a sane length.
_REFUSAL_CODES = {str(code): code for code in MODULE_REFUSALS}
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True, slots=True)
class WorkerRules:
    """Everything a worker checks a module against, fixed for the worker's life."""

    address_space_bytes: int
    max_module_bytes: int
    max_memory_bytes: int
    max_table_elements: int
    inspection: InspectionLimits
    extra_features: frozenset[str] = frozenset()

    def to_json(self) -> str:
        described = dataclasses.asdict(self)
        described["extra_features"] = sorted(self.extra_features)
        return json.dumps(described, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerRules:
        described = json.loads(text)
        return cls(
            address_space_bytes=int(described["address_space_bytes"]),
            max_module_bytes=int(described["max_module_bytes"]),
            max_memory_bytes=int(described["max_memory_bytes"]),
            max_table_elements=int(described["max_table_elements"]),
            inspection=InspectionLimits(**described["inspection"]),
            extra_features=frozenset(described["extra_features"]),
        )


def encode_refusal(refusal: ModuleRefused) -> bytes:
    return json.dumps({"code": refusal.code, "message": refusal.message}).encode()


def decode_refusal(payload: bytes) -> ModuleRefused:
    """The worker's refusal, or a ValueError if the payload is not one."""
    described = json.loads(payload)
    raw_code, message = described["code"], described["message"]
    code = _REFUSAL_CODES.get(raw_code) if isinstance(raw_code, str) else None
    if code is None or not isinstance(message, str):
        raise ValueError("not a refusal")
    return ModuleRefused(code, message[:MAX_MESSAGE_CHARS])
