"""The compiled-module cache on disk: warm restarts compile nothing; only our artifacts load."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from pathlib import Path

import pytest

from wasmwiz.sandbox import (
    InspectionLimits,
    Limits,
    ModuleRejected,
    Outcome,
    RunRequest,
    Sandbox,
    SandboxError,
    load_example,
)


def variant(index: int) -> bytes:
    # Seven characters, like "WasmWiz": the example writes a fixed length.
    return load_example("hello").replace(b"WasmWiz", f"dk{index:05}".encode())


def artifacts(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*/*.cwasm"))


def test_a_restart_with_a_warm_disk_cache_compiles_nothing(tmp_path: Path) -> None:
    with Sandbox(cache_dir=tmp_path) as first:
        first.prepare(variant(1))
        assert first.stats().compiles == 1

    with Sandbox(cache_dir=tmp_path) as second:
        result = second.run(second.prepare(variant(1)), RunRequest())
        stats = second.stats()

    assert result.stdout == b"Hello, dk00001!\n"
    assert (stats.compiles, stats.disk_cache_hits) == (0, 1)
    assert second._compiler._pool._live == 0  # no worker was even started


# Declares (and exports) a minimum of 16 pages, 1 MiB, of memory.
SIXTEEN_PAGES = b"""(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 16)
  (func (export "_start") (call $exit (i32.const 0))))
"""
TWO_FUNCTIONS = b"""(module
  (func $nothing)
  (func (export "_start") (call $nothing)))
"""
MiB = 1024 * 1024


def test_a_stricter_memory_limit_is_not_bypassed_by_a_cached_artifact(tmp_path: Path) -> None:
    with Sandbox(cache_dir=tmp_path, limits=Limits(memory_bytes=4 * MiB)) as roomy:
        roomy.prepare(SIXTEEN_PAGES)
        assert roomy.stats().compiles == 1

    # Restarted with MEMORY_LIMIT lowered under the module's declared minimum: the
    # refusal is the same 422 a fresh upload gets, not a run that fails on memory.
    with Sandbox(cache_dir=tmp_path, limits=Limits(memory_bytes=MiB // 2)) as strict:
        with pytest.raises(ModuleRejected) as caught:
            strict.prepare(SIXTEEN_PAGES)
        assert strict.stats().disk_cache_hits == 0
    assert caught.value.code == "declared_memory_too_large"


def test_stricter_inspection_limits_are_not_bypassed_by_a_cached_artifact(
    tmp_path: Path,
) -> None:
    with Sandbox(cache_dir=tmp_path) as first:
        first.prepare(TWO_FUNCTIONS)

    with Sandbox(cache_dir=tmp_path, inspection=InspectionLimits(max_functions=1)) as strict:
        with pytest.raises(ModuleRejected) as caught:
            strict.prepare(TWO_FUNCTIONS)
        assert strict.stats().disk_cache_hits == 0
    assert caught.value.code == "too_many_functions"

    # The same rules as when it was stored: the artifact is found again.
    with Sandbox(cache_dir=tmp_path) as again:
        again.prepare(TWO_FUNCTIONS)
        assert (again.stats().compiles, again.stats().disk_cache_hits) == (0, 1)


def test_a_tampered_artifact_is_never_loaded(tmp_path: Path) -> None:
    with Sandbox(cache_dir=tmp_path) as first:
        first.prepare(variant(2))
    [artifact] = artifacts(tmp_path)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))

    with Sandbox(cache_dir=tmp_path) as second:
        result = second.run(second.prepare(variant(2)), RunRequest())
        stats = second.stats()

    assert result.stdout == b"Hello, dk00002!\n"
    assert (stats.compiles, stats.disk_cache_hits) == (1, 0)


def test_an_artifact_from_another_cache_directory_is_not_trusted(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    with Sandbox(cache_dir=theirs) as other:
        other.prepare(variant(3))
    with Sandbox(cache_dir=mine) as sandbox:
        sandbox.prepare(variant(4))  # creates the directory and its own secret
    # Copy their (valid, but not ours) artifact and metadata in under our layout.
    [source] = artifacts(theirs)
    target = mine / source.parent.name / source.name
    target.write_bytes(source.read_bytes())
    target.with_suffix(".json").write_bytes(source.with_suffix(".json").read_bytes())

    with Sandbox(cache_dir=mine) as sandbox:
        sandbox.prepare(variant(3))
        stats = sandbox.stats()

    assert (stats.compiles, stats.disk_cache_hits) == (1, 0)


def test_a_record_under_the_old_hmac_scheme_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    with Sandbox(cache_dir=tmp_path) as first:
        first.prepare(variant(5))
    [artifact] = artifacts(tmp_path)
    sidecar = artifact.with_suffix(".json")
    record = json.loads(sidecar.read_bytes())
    # What the cache wrote before BLAKE3: HMAC-SHA256, under the same secret, over the
    # same header (without a scheme name) and artifact. Valid then; not trusted now.
    old = hmac.new((tmp_path / "secret").read_bytes(), digestmod=hashlib.sha256)
    header = [artifact.parent.name, artifact.stem, record["meta"]]
    old.update(json.dumps(header, sort_keys=True).encode() + b"\0" + artifact.read_bytes())
    sidecar.write_text(json.dumps({"meta": record["meta"], "mac": old.hexdigest()}))

    with Sandbox(cache_dir=tmp_path) as second:
        assert second.run(second.prepare(variant(5)), RunRequest()).stdout == b"Hello, dk00005!\n"
        assert (second.stats().compiles, second.stats().disk_cache_hits) == (1, 0)
    with Sandbox(cache_dir=tmp_path) as third:
        third.prepare(variant(5))
        assert (third.stats().compiles, third.stats().disk_cache_hits) == (0, 1)


def test_the_disk_cache_is_bounded_by_bytes(tmp_path: Path) -> None:
    with Sandbox(cache_dir=tmp_path, disk_cache_max_bytes=200_000) as sandbox:
        for index in range(12):
            sandbox.prepare(variant(100 + index))

    stored = [path for path in tmp_path.glob("*/*") if path.is_file()]
    assert 0 < len(artifacts(tmp_path)) < 12
    assert sum(path.stat().st_size for path in stored) <= 200_000


def test_processes_sharing_a_directory_agree(tmp_path: Path) -> None:
    sandboxes = [Sandbox(cache_dir=tmp_path, max_concurrency=1) for _ in range(3)]
    results: list[bytes] = []
    try:

        def work(sandbox: Sandbox) -> None:
            for index in range(5):
                compiled = sandbox.prepare(variant(200 + index))
                results.append(sandbox.run(compiled, RunRequest()).stdout)

        threads = [threading.Thread(target=work, args=(s,)) for s in sandboxes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for sandbox in sandboxes:
            sandbox.close()

    assert sorted(results) == sorted([b"Hello, dk%05d!\n" % (200 + i) for i in range(5)] * 3)
    assert len(artifacts(tmp_path)) == 5
    assert len(set((tmp_path / "secret").read_bytes())) > 1


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)

    with pytest.raises(SandboxError, match="not writable by group or others"):
        Sandbox(cache_dir=shared)


def test_cache_files_are_private(tmp_path: Path) -> None:
    with Sandbox(cache_dir=tmp_path / "cache") as sandbox:
        assert sandbox.run(sandbox.prepare(variant(5)), RunRequest()).outcome is Outcome.SUCCESS

    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "cache" / "secret").stat().st_mode & 0o777 == 0o600
