"""Caps glibc's malloc arenas in a serving process, before it starts any thread.

glibc gives each new thread that allocates its own arena, up to eight per core. The
sandbox's worker threads allocate through wasmtime (Rust uses the system allocator) and
Python, so memory freed by one thread's arena is not reused by another's, and the
process grows with fragmentation rather than with use. Two arenas are the usual remedy
for multi-threaded Python services; what it did to the soak's RSS is in
docs/performance.md (bench/soak.py).

An operator's own MALLOC_ARENA_MAX wins: glibc read it when the process started.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the cap was applied (not on other C libraries, nor over MALLOC_ARENA_MAX)."""
    if "MALLOC_ARENA_MAX" in environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # no mallopt (macOS): nothing to tune
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
