"""A compile worker that dies of a real SIGSEGV in its first job while a flag file exists.

Run by tests/sandbox/test_compile_worker.py through CompilePool's `command` seam, as
`python -I segfaulting_worker.py FLAG RULES`: it removes FLAG, reads one request as the
real worker would, and dereferences NULL; without FLAG it is the real worker.
"""

from __future__ import annotations

import ctypes
import os
import sys

from wasmwiz.sandbox import compile_worker
from wasmwiz.sandbox.compile_protocol import REQUEST

if __name__ == "__main__":
    flag, rules = sys.argv[1], sys.argv[2]
    if os.path.exists(flag):
        os.unlink(flag)
        header = sys.stdin.buffer.read(REQUEST.size)
        sys.stdin.buffer.read(REQUEST.unpack(header)[1])
        ctypes.string_at(0)  # a genuine segmentation fault, not a signal sent from outside
    compile_worker.main([sys.argv[0], rules])
