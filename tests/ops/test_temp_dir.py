"""WASM_TEMP_DIR may be shared: the server removes only the directory it made there.

Each process works in its own `wasmwiz-<pid>-<hex>/` (0700, with a marker) and removes
it when it stops; at start it removes what earlier, dead processes of ours left, and
nothing else: not other programs' files, not links, not look-alikes without our marker,
not the directory of a process still running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fixtures.database import run_outside_loop
from tests.ops.process import serve_process
from wasmwiz.persistence.migrate import upgrade
from wasmwiz.scratch_dir import MARKER_NAME, ScratchDir, remove_stale

STRANGER_UID = 54_321


def plant_foreign_files(temp_dir: Path, outside: Path) -> dict[str, bytes]:
    """Other programs' files in a shared temp dir, including traps for a careless cleaner."""
    temp_dir.mkdir(mode=0o1777, parents=True)
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"not in the temp dir at all")
    (temp_dir / "report.pdf").write_bytes(b"someone's report")
    (temp_dir / "build").mkdir()
    (temp_dir / "build" / "out.o").write_bytes(b"\x7fELF")
    (temp_dir / "link-out").symlink_to(outside)
    # Looks like ours by name, but carries no marker.
    (temp_dir / "wasmwiz-1-0123456789abcdef").mkdir()
    (temp_dir / "wasmwiz-1-0123456789abcdef" / "data").write_bytes(b"not ours")
    # Named like ours, with a marker, but a link: not followed, not removed.
    (outside / MARKER_NAME).write_text("wasmwiz scratch directory: forged\nprocess 2 0 x\n")
    (temp_dir / "wasmwiz-2-0123456789abcdef").symlink_to(outside)
    # Marked, but another user's.
    stranger = temp_dir / "wasmwiz-3-0123456789abcdef"
    stranger.mkdir()
    (stranger / MARKER_NAME).write_text("wasmwiz scratch directory: x\nprocess 3 0 x\n")
    os.chown(stranger, STRANGER_UID, STRANGER_UID)
    return everything(temp_dir.parent)


def everything(root: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = b"-> " + str(path.readlink()).encode()
        elif path.is_file():
            found[key] = path.read_bytes()
        else:
            found[key] = b"<dir>"
    return found


def leftover_of_a_dead_process(temp_dir: Path) -> Path:
    """What a server killed with SIGKILL leaves: its marked directory, with a file."""
    code = (
        "import sys; from pathlib import Path; from wasmwiz.scratch_dir import ScratchDir;"
        "scratch = ScratchDir.create(Path(sys.argv[1]));"
        "(scratch.path / 'half-written').write_bytes(b'x');"
        "print(scratch.path)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(temp_dir)], check=True, capture_output=True, text=True
    )
    return Path(done.stdout.strip())


def ours(temp_dir: Path) -> list[Path]:
    return [path for path in temp_dir.glob(f"wasmwiz-{'[0-9]' * 1}*") if path.is_dir()]


def test_a_shared_temp_dir_keeps_everything_but_our_own_across_a_start_and_stop(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    run_outside_loop(lambda: upgrade(database_url))
    temp_dir, outside = tmp_path / "shared" / "tmp", tmp_path / "outside"
    before = plant_foreign_files(temp_dir, outside)
    stale = leftover_of_a_dead_process(temp_dir)
    assert stale.is_dir()

    env = {"WASM_TEMP_DIR": str(temp_dir)}
    with serve_process(tmp_path, database_url, env=env) as (process, _url):
        [own] = [
            path
            for path in temp_dir.iterdir()
            if path.name.startswith(f"wasmwiz-{process.pid}-") and path.is_dir()
        ]
        assert own.stat().st_mode & 0o777 == 0o700
        assert (own / MARKER_NAME).is_file()
        assert not stale.exists()  # its process is gone
        assert everything(tmp_path / "shared") == {
            **before,
            str(own.relative_to(tmp_path / "shared")): b"<dir>",
            str((own / MARKER_NAME).relative_to(tmp_path / "shared")): (
                own / MARKER_NAME
            ).read_bytes(),
        }
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # a clean stop

    assert not own.exists()
    assert everything(tmp_path / "shared") == before
    assert (outside / "precious.txt").read_bytes() == b"not in the temp dir at all"


def test_a_running_process_directory_is_left_alone(tmp_path: Path) -> None:
    first = ScratchDir.create(tmp_path)  # this process: alive
    (first.path / "in-use").write_bytes(b"busy")

    assert remove_stale(tmp_path) == []
    second = ScratchDir.create(tmp_path)
    assert (first.path / "in-use").read_bytes() == b"busy"

    second.remove()
    first.remove()
    assert list(tmp_path.iterdir()) == []


def test_a_dead_process_directory_is_removed_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"keep me")
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    stale = leftover_of_a_dead_process(temp_dir)
    (stale / "escape").symlink_to(outside)

    assert remove_stale(temp_dir) == [stale]
    assert not stale.exists()
    assert (outside / "keep").read_bytes() == b"keep me"
