"""Whether a command's stdin holds input: `wasmwiz run` and `wasmwiz remote run` send what
is piped or redirected in, as a program run in the shell would read it."""

from __future__ import annotations

import os
import stat
from typing import BinaryIO


def is_piped(stream: BinaryIO) -> bool:
    """A pipe or a file, not a terminal (or /dev/null), so a command given no input never
    waits for it. A stream with no descriptor (a test's BytesIO) is not piped."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)
