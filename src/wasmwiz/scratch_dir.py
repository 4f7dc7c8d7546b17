"""The server's own scratch directory inside WASM_TEMP_DIR, and removing only what it made.

WASM_TEMP_DIR may be shared (`/tmp`, a volume other programs use), so the server never
empties it. Each process makes `wasmwiz-<pid>-<random>/` in it, 0700, holding a marker
file, works only in there, and removes it on a clean stop. At start it also removes the
directories that earlier processes of this service left behind (a crash, a SIGKILL):
only a real directory (not a link) named `wasmwiz-<pid>-<hex>`, owned by this user, with
the marker (a regular file of this user's) inside, whose process is gone. Everything
else in WASM_TEMP_DIR is left as it is.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

MARKER_NAME = ".wasmwiz-scratch"
_NAME = re.compile(r"wasmwiz-[0-9]{1,10}-[0-9a-f]{16}")
_MARKER_TITLE = "wasmwiz scratch directory: removed when the process below is gone"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class ScratchDir:
    """A directory of this process's own under `parent`: made by `create`, gone at `remove`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, parent: Path) -> ScratchDir:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        remove_stale(parent)
        pid = os.getpid()
        path = parent / f"wasmwiz-{pid}-{secrets.token_hex(8)}"
        path.mkdir(mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(path / MARKER_NAME, flags, 0o600), "w") as marker:
            marker.write(f"{_MARKER_TITLE}\nprocess {_process_identity(pid)}\n")
        return cls(path)

    def remove(self) -> None:
        if _marker(self.path) is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def remove_stale(parent: Path) -> list[Path]:
    """Remove what earlier processes of this service left in `parent`; return what went."""
    removed = []
    with os.scandir(parent) as listing:
        names = [entry.name for entry in listing if _NAME.fullmatch(entry.name)]
    for name in names:
        path = parent / name
        marker = _marker(path)
        if marker is None or _is_alive(marker):
            continue
        # rmtree works through descriptors and never follows a link inside (on Linux,
        # shutil.rmtree.avoids_symlink_attacks), so it deletes nothing outside `path`.
        shutil.rmtree(path, ignore_errors=True)
        logger.info("removed %s, left behind by an earlier wasmwiz process", path)
        removed.append(path)
    return removed


def _marker(path: Path) -> str | None:
    """The marker's text, if `path` is a real directory of this user's holding our marker
    as a regular file of this user's; otherwise None."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return None
        marker_fd = os.open(MARKER_NAME, _FILE_FLAGS, dir_fd=fd)
        try:
            marker = os.fstat(marker_fd)
            if not stat.S_ISREG(marker.st_mode) or marker.st_uid != os.geteuid():
                return None
            text = os.read(marker_fd, 1024).decode("utf-8", "replace")
        finally:
            os.close(marker_fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    return text if text.startswith(_MARKER_TITLE) else None


def _is_alive(marker: str) -> bool:
    """Whether the process that wrote `marker` still runs (by pid, start time and boot)."""
    match = re.search(r"^process (?P<pid>[0-9]{1,10}) (?P<rest>.*)$", marker, re.MULTILINE)
    if match is None:
        return False
    return _process_identity(int(match["pid"])) == f"{match['pid']} {match['rest']}"


def _process_identity(pid: int) -> str:
    """`pid`, its start time and the boot it belongs to: unique even after pid reuse (a
    container's server is often pid 1 on every start). "gone" if there is no such process."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return f"{pid} gone"
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    started = stat_line.rpartition(")")[2].split()[19]
    return f"{pid} {started} {boot}"
