"""The byte protocol between the service and its compile workers, shared by both sides.

A request is a header (CPU budget in milliseconds, payload length) and the wasm binary.
A reply is a header (status, payload length) and either wasmtime's serialized artifact
or, for a module wasmtime refused, its error message in UTF-8.
"""

from __future__ import annotations

import struct

REQUEST = struct.Struct("<QQ")
REPLY = struct.Struct("<BQ")

STATUS_COMPILED = 0
STATUS_REFUSED = 1

# The worker's exit status when Python itself ran out of memory (a MemoryError under its
# address-space limit), which the service reports like the kernel's stop for the same
# cause: compile_memory_limit. Any other exit status is the worker's own failure.
EXIT_OUT_OF_MEMORY = 3

WORKER_MODULE = "wasmwiz.sandbox.compile_worker"
