"""A run's in-memory directory (memfs, wasi_files, file_output) through Sandbox.run.

The C probe (fixtures/files/fs_probe.c, built with the pinned zig: `python -m ziglang cc
--target=wasm32-wasi -Os -s -o fs_probe.wasm fs_probe.c`) exercises what the WASI test
suite's Rust tests check (create, read, write, seek, append, truncate, rename, link,
symlink, readdir, timestamps, error codes). It runs twice: on wasmtime's own WASI over a
real directory, and on ours; their outputs may differ only where docs/architecture.md says why.
"""

from __future__ import annotations

import collections
import difflib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from wasmwiz.sandbox import Limits, Outcome, RunRequest, Sandbox, SandboxBusy, load_example
from wasmwiz.sandbox.file_input import InputEntry
from wasmwiz.sandbox.file_output import InvalidPattern, compile_patterns
from wasmwiz.sandbox.memfs import (
    DQUOT,
    NOSPC,
    FilesBudget,
    FsError,
    FsLimits,
    MemoryFileSystem,
)

FIXTURES = Path(__file__).parent / "fixtures" / "files"

# Where our answers differ from wasmtime's own over a host directory, each POSIX's answer:
# rename(2) of a file onto a directory is EISDIR, and rmdir("dir/") removes the directory.
DOCUMENTED_DIFFERENCES = [
    "-rename file over dir: -1 Directory not empty",
    "+rename file over dir: -1 Is a directory",
    "-rmdir trailing: -1 Invalid argument",
    "+rmdir trailing: 0 ",
    "-list .: . .. big dangle e edirlink esc loopa loopb t",
    "+list .: . .. big dangle e edirlink esc loopa loopb",
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(files_budget_bytes=256 * 1024 * 1024) as box:
        yield box


def native_output(wasm: bytes, directory: Path) -> str:
    """The program's stdout under wasmtime's own WASI with `directory` preopened at /."""
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    config.argv = ["probe"]
    config.preopen_dir(str(directory), "/")
    stdout = directory.parent / "stdout"
    config.stdout_file = str(stdout)
    store.set_wasi(config)
    instance = linker.instantiate(store, wasmtime.Module(engine, wasm))
    start = instance.exports(store)["_start"]
    assert isinstance(start, wasmtime.Func)
    start(store)  # the probe returns from main: an exit code of 0 raises nothing
    return stdout.read_text()


def test_the_probe_answers_as_wasmtime_does_but_where_documented(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    wasm = (FIXTURES / "fs_probe.wasm").read_bytes()
    (tmp_path / "root").mkdir()
    native = native_output(wasm, tmp_path / "root")
    result = sandbox.run(sandbox.prepare(wasm), RunRequest(files=(), program_name="probe"))
    assert result.outcome is Outcome.SUCCESS, result.error
    ours = result.stdout.decode()
    assert len(ours.splitlines()) > 90
    differences = [
        line
        for line in difflib.unified_diff(native.splitlines(), ours.splitlines(), n=0, lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert differences == DOCUMENTED_DIFFERENCES


def test_escapes_are_refused(sandbox: Sandbox) -> None:
    wasm = (FIXTURES / "fs_probe.wasm").read_bytes()
    result = sandbox.run(sandbox.prepare(wasm), RunRequest(files=(), program_name="probe"))
    lines = dict(
        line.split(": ", 1) for line in result.stdout.decode().splitlines() if ": " in line
    )
    assert lines["open escape"] == "-1 Operation not permitted"
    assert lines["symlink abs"] == "-1 Operation not permitted"
    assert lines["open dotdot"] == "-1 Operation not permitted"
    assert lines["open loop"] == "-1 Symbolic link loop"


def test_input_round_trips_and_the_budget_is_given_back(sandbox: Sandbox) -> None:
    payload = os.urandom(1024 * 1024)
    copy = sandbox.prepare((FIXTURES / "copy.wasm").read_bytes())
    request = RunRequest(files=(InputEntry("in.txt", payload),), collect=("out/**",))
    result = sandbox.run(copy, request)
    assert result.outcome is Outcome.SUCCESS, result.stderr
    (collected,) = result.files
    assert (collected.path, collected.content) == ("out/in.txt", payload)
    assert collected.sha256 == hashlib.sha256(payload).hexdigest()
    assert sandbox.files_budget.used == 0


@pytest.mark.parametrize(("mode", "expected"), [("bytes", 1024 * 1024), ("entries", 50)])
def test_writing_without_end_stops_at_the_quota(sandbox: Sandbox, mode: str, expected: int) -> None:
    fill = sandbox.prepare((FIXTURES / "fill.wasm").read_bytes())
    limits = Limits(files_quota_bytes=1024 * 1024, files_max_entries=50)
    result = sandbox.run(fill, RunRequest(args=(mode,), files=()), limits)
    assert result.outcome is Outcome.SUCCESS, result.error
    assert result.stdout.decode() == (
        f"{mode} stopped after {expected}: Quota exceeded (errno 19)\n"
    )
    assert sandbox.files_budget.used == 0


def test_a_spent_budget_fails_writes_with_enospc_and_refuses_input() -> None:
    with Sandbox(files_budget_bytes=2 * 1024 * 1024) as box:
        fill = box.prepare((FIXTURES / "fill.wasm").read_bytes())
        result = box.run(fill, RunRequest(args=("bytes",), files=()))
        assert "No space left on device" in result.stdout.decode(), result.stdout
        too_big = (InputEntry("big", bytes(3 * 1024 * 1024)),)
        with pytest.raises(SandboxBusy):
            box.run(fill, RunRequest(files=too_big))
        assert box.files_budget.used == 0


@pytest.mark.anyio
async def test_a_series_hands_back_a_run_the_budget_has_no_room_for() -> None:
    with Sandbox(files_budget_bytes=2 * 1024 * 1024, max_concurrency=1) as box:
        hello = box.prepare(load_example("hello"))
        waiting = collections.deque(range(3))
        handed_back: list[int] = []

        def take() -> tuple[int, RunRequest] | None:
            if not waiting:
                return None
            index = waiting.popleft()
            if index == 1 and not handed_back:  # another run takes the whole budget now
                box.files_budget.take(box.files_budget.available())
            return index, RunRequest(files=())

        def give_back(index: int) -> None:
            handed_back.append(index)
            waiting.appendleft(index)

        first = await box.run_series(hello, take, give_back, slice_seconds=60)
        assert [index for index, _ in first] == [0]  # the series ended at the refusal
        assert handed_back == [1]
        with pytest.raises(SandboxBusy):  # nothing fits: the caller waits, nothing is lost
            await box.run_series(hello, take, give_back, slice_seconds=60)
        assert handed_back == [1, 1]
        box.files_budget.give_back(box.files_budget.used)
        rest = await box.run_series(hello, take, give_back, slice_seconds=60)
        assert [index for index, _ in rest] == [1, 2]
        assert all(result.outcome is Outcome.SUCCESS for _, result in first + rest)


def test_files_are_collected_after_a_timeout(sandbox: Sandbox) -> None:
    wat = b"""
    (module
      (import "wasi_snapshot_preview1" "path_open"
        (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "left.txt")
      (func (export "_start")
        (drop (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 8)
          (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
        (loop $forever (br $forever))))
    """
    result = sandbox.run(
        sandbox.prepare(wat),
        RunRequest(files=(), collect=("**",)),
        Limits(timeout_seconds=0.2),
    )
    assert result.outcome is Outcome.TIMEOUT
    assert [file.path for file in result.files] == ["left.txt"]
    assert sandbox.files_budget.used == 0


def test_a_run_without_files_has_no_directory(sandbox: Sandbox) -> None:
    wasm = (FIXTURES / "copy.wasm").read_bytes()
    result = sandbox.run(sandbox.prepare(wasm), RunRequest())
    assert result.outcome is Outcome.EXIT_NONZERO
    assert result.files == ()


@pytest.mark.parametrize(
    ("patterns", "matched"),
    [
        (["**"], ["a.txt", "out/b.csv", "out/deep/c.csv"]),
        (["*.txt"], ["a.txt"]),
        (["out/*"], ["out/b.csv"]),
        (["out/**"], ["out/b.csv", "out/deep/c.csv"]),
        (["**/*.csv"], ["out/b.csv", "out/deep/c.csv"]),
        (["out/**/c.csv"], ["out/deep/c.csv"]),
        (["?.txt", "out/[ab].csv"], ["a.txt", "out/b.csv"]),
        (["out/[!b].csv"], []),
        (["./a.txt"], ["a.txt"]),
    ],
)
def test_collect_patterns(patterns: list[str], matched: list[str]) -> None:
    paths = ["a.txt", "out/b.csv", "out/deep/c.csv"]
    matcher = compile_patterns(patterns)
    assert [path for path in paths if matcher.match(path)] == matched


@pytest.mark.parametrize("pattern", ["", "/etc/*", "../x", "a/../../b", "a\\b", "x" * 2000])
def test_bad_collect_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidPattern):
        compile_patterns([pattern])


def test_collect_never_follows_a_link() -> None:
    fs = MemoryFileSystem(FsLimits(), FilesBudget(1 << 20), clock=lambda: 0)
    secret = fs.add_directory(fs.root, "secret")
    fs.add_file(secret, "key", b"k")
    fs.symlink("secret", fs.root, "link")
    fs.symlink("secret/key", fs.root, "keylink")
    assert [path for path, _ in fs.regular_files()] == ["secret/key"]
    fs.release()


def test_quota_and_budget_errors() -> None:
    budget = FilesBudget(10_000)
    fs = MemoryFileSystem(FsLimits(max_bytes=4000, max_entries=3), budget, clock=lambda: 0)
    file = fs.add_file(fs.root, "f")
    assert fs.write_at(file, 0, b"x" * 5000) == 4000  # a short write, as a filling disk gives
    with pytest.raises(FsError) as quota:
        fs.write_at(file, 4000, b"y")
    assert quota.value.errno == DQUOT
    with pytest.raises(FsError) as hole:
        fs.write_at(file, 1 << 40, b"z")  # a hole counts: there are no sparse files
    assert hole.value.errno == DQUOT
    other = MemoryFileSystem(FsLimits(max_bytes=8000), budget, clock=lambda: 0)
    big = other.add_file(other.root, "g")
    left = budget.available()
    assert 0 < left < 8000
    assert other.write_at(big, 0, b"z" * 8000) == left  # what the budget had left
    with pytest.raises(FsError) as spent:
        other.write_at(big, left, b"z")
    assert spent.value.errno == NOSPC
    fs.release()
    other.release()
    assert budget.used == 0


def test_readdir_and_descriptors_survive_unlink_and_rename(sandbox: Sandbox) -> None:
    """Covered by the probe's lines; here its readdir listings, which must be exact."""
    wasm = (FIXTURES / "fs_probe.wasm").read_bytes()
    result = sandbox.run(sandbox.prepare(wasm), RunRequest(files=(), program_name="probe"))
    listings = re.findall(r"^list (\S+): (.*)$", result.stdout.decode(), re.MULTILINE)
    assert ("d", ". .. a.txt f") in listings
    assert ("edirlink", ". .. a.txt") in listings
