"""A serving process caps glibc's malloc arenas, unless the operator already chose."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from wasmwiz.cli.malloc_arenas import MALLOC_ARENAS, cap_malloc_arenas

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's"
)

# Eight threads, all alive at once, that each allocate through malloc (bytearrays over
# pymalloc's 512 bytes), then glibc's own account of its arenas on stderr.
_THREADS_THEN_STATS = """
import ctypes, sys, threading
from wasmwiz.cli.malloc_arenas import cap_malloc_arenas
if sys.argv[1] == "cap":
    assert cap_malloc_arenas(environ={})
all_alive = threading.Barrier(8)
def allocate():
    all_alive.wait()  # a finished thread's arena would be handed to the next one
    kept = [bytearray(4096) for _ in range(200)]
    all_alive.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def arenas_used(mode: str) -> int:
    completed = subprocess.run(
        [sys.executable, "-c", _THREADS_THEN_STATS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return sum(line.startswith("Arena ") for line in completed.stderr.splitlines())


def test_threads_share_at_most_the_capped_arenas() -> None:
    # Without the cap each new thread takes an arena of its own: the test can tell.
    assert arenas_used("plain") > MALLOC_ARENAS
    assert 1 <= arenas_used("cap") <= MALLOC_ARENAS


def test_an_operators_malloc_arena_max_is_left_alone() -> None:
    assert cap_malloc_arenas(environ={"MALLOC_ARENA_MAX": "4"}) is False
