"""Large blocks straight from the kernel and back: memory a run's files held is returned
when the run ends, not kept by the C allocator.

glibc's malloc serves blocks above M_MMAP_THRESHOLD with their own mappings, unmapped when
freed (and grown with mremap, never copied). By default that threshold rises each time such
a block is freed, up to 32 MiB: after the first runs with files, their multi-megabyte
buffers came from the per-thread heaps instead, which fragment and keep their pages.
Measured here (20 concurrent writers, 48 MiB files budget, six storms): the process's RSS
settled at about 4 times the budget above its baseline with the dynamic threshold, and
came back to its baseline after each storm (peak about 1.1 times the budget) with a fixed
256 KiB threshold. Setting the threshold also fixes it (glibc stops adjusting it).

512 KiB, not 256: asyncio reads a socket 256 KiB at a time into a new bytes object (plus
its header), which a 256 KiB threshold mapped afresh for every read, its pages faulting
in on the event loop's thread. In tests/security/test_untrusted_bytes.py on one machine
the event loop's CPU for a 10 MiB body went from 20.3 to 10.9 ms; the files storm of
tests/security/test_files_abuse.py peaked at 56 MiB above its start for a 48 MiB budget.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
LARGE_BLOCK_BYTES = 512 * 1024


def map_large_blocks(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold`; False where the C library is not glibc
    (or refuses), which changes nothing else."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
