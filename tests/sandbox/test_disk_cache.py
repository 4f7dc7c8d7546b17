"""The compiled-module cache on disk: warm restarts compile nothing; only our artifacts load.

Nothing on disk is trusted: the MAC key is the caller's, the root is opened once without
following links, and planted links, foreign files and forged records are refused or
ignored without anything outside the cache being read or deleted. The tests run as root
in CI, so they can give files to another owner with os.chown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path

import pytest
import wasmtime

from wasmwiz.sandbox import (
    InspectionLimits,
    Limits,
    ModuleRefused,
    Outcome,
    RunRequest,
    Sandbox,
    SandboxError,
    load_example,
)
from wasmwiz.sandbox.artifacts import ArtifactMeta, ArtifactStore

KEY = hashlib.sha256(b"the disk cache tests' MAC key").digest()
OTHER_KEY = hashlib.sha256(b"another deployment's MAC key").digest()
STRANGER_UID = 54_321  # no such user: a file owned by anyone but the service
MiB = 1024 * 1024


def cached(cache_dir: Path, key: bytes = KEY, **options: object) -> Sandbox:
    return Sandbox(cache_dir=cache_dir, cache_mac_key=key, **options)  # type: ignore[arg-type]


def variant(index: int) -> bytes:
    # Seven characters, like "WasmWiz": the example writes a fixed length.
    return load_example("hello").replace(b"WasmWiz", f"dk{index:05}".encode())


def greeting(index: int) -> bytes:
    return b"Hello, dk%05d!\n" % index


def artifacts(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*/*.cwasm"))


def artifact_of(cache_dir: Path, data: bytes) -> Path:
    [path] = cache_dir.glob(f"*/{hashlib.sha256(data).hexdigest()}.cwasm")
    return path


def counts(sandbox: Sandbox) -> tuple[int, int]:
    stats = sandbox.stats()
    return stats.compiles, stats.disk_cache_hits


def run_once(cache_dir: Path, index: int, key: bytes = KEY) -> tuple[int, int]:
    """Prepare and run variant `index` in a new sandbox: (compiles, disk hits)."""
    with cached(cache_dir, key) as sandbox:
        result = sandbox.run(sandbox.prepare(variant(index)), RunRequest())
        assert result.stdout == greeting(index)
        return counts(sandbox)


def snapshot(directory: Path) -> dict[str, tuple[int, bytes, int, int]]:
    """Every file under `directory`, not following links: size, first MiB, owner, mode."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            info = path.lstat()
            with path.open("rb") as file:
                head = file.read(MiB)
            found[str(path.relative_to(directory))] = (
                info.st_size,
                head,
                info.st_uid,
                info.st_mode,
            )
    return found


def test_a_restart_with_a_warm_disk_cache_compiles_nothing(tmp_path: Path) -> None:
    with cached(tmp_path) as first:
        first.prepare(variant(1))
        assert first.stats().compiles == 1

    with cached(tmp_path) as second:
        result = second.run(second.prepare(variant(1)), RunRequest())
        assert counts(second) == (0, 1)
        assert second._compiler._pool._live == 0  # no worker was even started

    assert result.stdout == greeting(1)


def test_a_disk_cache_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MAC key"):
        Sandbox(cache_dir=tmp_path)
    with pytest.raises(ValueError, match="32 bytes"):
        Sandbox(cache_dir=tmp_path, cache_mac_key=b"short")


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


def test_a_stricter_memory_limit_is_not_bypassed_by_a_cached_artifact(tmp_path: Path) -> None:
    with cached(tmp_path, limits=Limits(memory_bytes=4 * MiB)) as roomy:
        roomy.prepare(SIXTEEN_PAGES)
        assert roomy.stats().compiles == 1

    # Restarted with MEMORY_LIMIT lowered under the module's declared minimum: the
    # refusal is the same 422 a fresh upload gets, not a run that fails on memory.
    with cached(tmp_path, limits=Limits(memory_bytes=MiB // 2)) as strict:
        with pytest.raises(ModuleRefused) as caught:
            strict.prepare(SIXTEEN_PAGES)
        assert strict.stats().disk_cache_hits == 0
    assert caught.value.code == "declared_memory_too_large"


def test_stricter_inspection_limits_are_not_bypassed_by_a_cached_artifact(
    tmp_path: Path,
) -> None:
    with cached(tmp_path) as first:
        first.prepare(TWO_FUNCTIONS)

    with cached(tmp_path, inspection=InspectionLimits(max_functions=1)) as strict:
        with pytest.raises(ModuleRefused) as caught:
            strict.prepare(TWO_FUNCTIONS)
        assert strict.stats().disk_cache_hits == 0
    assert caught.value.code == "too_many_functions"

    # The same rules as when it was stored: the artifact is found again.
    with cached(tmp_path) as again:
        again.prepare(TWO_FUNCTIONS)
        assert counts(again) == (0, 1)


def test_a_tampered_artifact_is_never_loaded(tmp_path: Path) -> None:
    run_once(tmp_path, 2)
    [artifact] = artifacts(tmp_path)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))

    assert run_once(tmp_path, 2) == (1, 0)


def test_a_different_key_makes_every_artifact_a_miss(tmp_path: Path) -> None:
    for index in (3, 4, 5):
        run_once(tmp_path, index)

    # The same directory under another deployment's key (a changed SECRET_KEY, or
    # records copied from elsewhere): nothing verifies, everything is compiled again.
    with cached(tmp_path, OTHER_KEY) as other:
        for index in (3, 4, 5):
            assert other.run(other.prepare(variant(index)), RunRequest()).stdout == greeting(index)
        assert counts(other) == (3, 0)
    with cached(tmp_path, OTHER_KEY) as again:
        again.prepare(variant(3))
        assert counts(again) == (0, 1)


def test_a_forged_record_with_a_valid_looking_name_is_ignored(tmp_path: Path) -> None:
    run_once(tmp_path, 6)
    real = artifacts(tmp_path)[0]
    forged = real.parent / f"{hashlib.sha256(variant(7)).hexdigest()}.cwasm"
    forged.write_bytes(secrets.token_bytes(64 * 1024))
    meta = json.loads(real.with_suffix(".json").read_bytes())["meta"]
    forged.with_suffix(".json").write_text(json.dumps({"meta": meta, "mac": secrets.token_hex(32)}))
    for path in (forged, forged.with_suffix(".json")):
        path.chmod(0o600)

    assert run_once(tmp_path, 7) == (1, 0)
    assert run_once(tmp_path, 7) == (0, 1)  # replaced by a record of ours


def test_a_real_artifact_under_another_modules_name_is_not_loaded(tmp_path: Path) -> None:
    # A valid artifact of ours, with its own valid sidecar, renamed to another module's
    # digest: loading it would run the wrong program. The MAC covers the digest.
    run_once(tmp_path, 8)
    source = artifacts(tmp_path)[0]
    target = source.parent / f"{hashlib.sha256(variant(9)).hexdigest()}.cwasm"
    os.replace(source, target)
    os.replace(source.with_suffix(".json"), target.with_suffix(".json"))

    assert run_once(tmp_path, 9) == (1, 0)  # and it printed dk00009, not dk00008


def test_a_record_under_the_old_hmac_scheme_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    run_once(tmp_path, 10)
    [artifact] = artifacts(tmp_path)
    sidecar = artifact.with_suffix(".json")
    record = json.loads(sidecar.read_bytes())
    # What the cache wrote before BLAKE3: HMAC-SHA256 over the same header (without a
    # scheme name) and artifact, here even under the same key. Valid then; not now.
    old = hmac.new(KEY, digestmod=hashlib.sha256)
    header = [artifact.parent.name, artifact.stem, record["meta"]]
    old.update(json.dumps(header, sort_keys=True).encode() + b"\0" + artifact.read_bytes())
    sidecar.write_text(json.dumps({"meta": record["meta"], "mac": old.hexdigest()}))

    assert run_once(tmp_path, 10) == (1, 0)
    assert run_once(tmp_path, 10) == (0, 1)


@pytest.mark.parametrize(
    ("which", "change"),
    [
        ("artifact", "owner"),
        ("artifact", "group-readable"),
        ("artifact", "world-readable"),
        ("sidecar", "owner"),
        ("sidecar", "world-readable"),
    ],
)
def test_a_file_of_another_owner_or_readable_by_others_is_refused(
    tmp_path: Path, which: str, change: str
) -> None:
    run_once(tmp_path, 11)
    artifact = artifacts(tmp_path)[0]
    path = artifact if which == "artifact" else artifact.with_suffix(".json")
    if change == "owner":
        os.chown(path, STRANGER_UID, STRANGER_UID)
    else:
        path.chmod(0o640 if change == "group-readable" else 0o604)

    assert run_once(tmp_path, 11) == (1, 0)
    if change == "owner":
        # Never replaced or deleted: it is not ours. The module is still served, from
        # memory, and compiled again by the next process.
        assert path.lstat().st_uid == STRANGER_UID
        assert run_once(tmp_path, 11) == (1, 0)
    else:
        # Ours but readable by others: refused, then replaced by a private one.
        assert path.lstat().st_mode & 0o777 == 0o600
        assert run_once(tmp_path, 11) == (0, 1)


def test_a_symlinked_root_is_refused_at_start(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (real / "keep.txt").write_text("not the cache's")
    link = tmp_path / "cache"
    link.symlink_to(real)

    with pytest.raises(SandboxError, match="is a symbolic link"):
        cached(link)
    assert [path.name for path in real.iterdir()] == ["keep.txt"]


def test_a_symlinked_fingerprint_directory_is_refused_at_start(tmp_path: Path) -> None:
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    run_once(cache, 12)
    # The unmetered engine's directory, which holds the record (each engine has its own).
    fingerprint_dir = artifact_of(cache, variant(12)).parent
    outside.mkdir(mode=0o700)
    for path in fingerprint_dir.iterdir():
        os.replace(path, outside / path.name)  # a valid record, moved out of the cache
    fingerprint_dir.rmdir()
    fingerprint_dir.symlink_to(outside)
    before = snapshot(outside)

    with pytest.raises(SandboxError, match="symbolic link is refused"):
        cached(cache)
    assert snapshot(outside) == before


def test_links_to_valid_records_outside_the_cache_are_not_followed(tmp_path: Path) -> None:
    # Outside: the very record this module would have, under the same key and layout.
    # If the cache followed a link to it, it would be a disk hit.
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    run_once(outside, 13)
    record = artifact_of(outside, variant(13))
    run_once(cache, 14)  # creates the cache's fingerprint directory
    fingerprint_dir = artifact_of(cache, variant(14)).parent
    assert fingerprint_dir.name == record.parent.name
    for suffix in (".cwasm", ".json"):
        (fingerprint_dir / record.with_suffix(suffix).name).symlink_to(record.with_suffix(suffix))
    before = snapshot(outside)

    assert run_once(cache, 13) == (1, 0)
    # The links are not replaced (not files of ours) and their targets are untouched.
    assert (fingerprint_dir / record.name).is_symlink()
    assert snapshot(outside) == before


def test_eviction_deletes_nothing_it_did_not_write_and_follows_no_link(tmp_path: Path) -> None:
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    run_once(cache, 100)
    fingerprint_dir = artifacts(cache)[0].parent
    # Outside: files named like artifacts, owned by the service and private, and a
    # sparse file far over the budget (the attack that once made eviction empty a
    # directory a planted link pointed into).
    outside.mkdir(mode=0o700)
    bait = [outside / f"{secrets.token_hex(32)}{suffix}" for suffix in (".cwasm", ".json")]
    for path in bait:
        path.write_bytes(b"someone else's data")
        path.chmod(0o600)
    with (outside / f"{secrets.token_hex(32)}.cwasm").open("wb") as sparse:
        sparse.truncate(10 * 1024 * MiB)
    os.chmod(sparse.name, 0o600)
    # Planted: a link to it named like a fingerprint directory, links to the bait
    # named like artifacts, a directory and files the cache never makes.
    (cache / ("f" * 32)).symlink_to(outside)
    for path in bait:
        (fingerprint_dir / path.name).symlink_to(path)
    planted_dir = cache / ("e" * 32)
    planted_dir.mkdir(mode=0o700)
    (planted_dir / "notes.txt").write_text("not an artifact")
    (cache / "README").write_text("the operator's note")
    (fingerprint_dir / "extra.bin").write_bytes(b"x" * 100_000)
    outside_before = snapshot(outside)

    with cached(cache, disk_cache_max_bytes=200_000) as sandbox:
        for index in range(12):
            sandbox.prepare(variant(101 + index))

    assert snapshot(outside) == outside_before
    assert (cache / "README").read_text() == "the operator's note"
    assert (planted_dir / "notes.txt").read_text() == "not an artifact"
    assert (fingerprint_dir / "extra.bin").stat().st_size == 100_000
    for path in bait:
        assert (fingerprint_dir / path.name).is_symlink()
    # And eviction did its job on what is its own.
    ours = [p for p in fingerprint_dir.iterdir() if p.suffix in (".cwasm", ".json")]
    ours = [p for p in ours if not p.is_symlink()]
    assert 0 < len([p for p in ours if p.suffix == ".cwasm"]) < 13
    assert sum(p.stat().st_size for p in ours) <= 200_000


def test_a_load_marks_the_artifact_and_its_sidecar_as_recently_used(tmp_path: Path) -> None:
    run_once(tmp_path, 400)
    artifact = artifacts(tmp_path)[0]
    pair = (artifact, artifact.with_suffix(".json"))
    for path in pair:
        os.utime(path, (1_000_000_000, 1_000_000_000))  # 2001

    assert run_once(tmp_path, 400) == (0, 1)
    assert all(path.stat().st_mtime > 1_700_000_000 for path in pair)


def test_a_closed_store_loads_and_stores_nothing(tmp_path: Path) -> None:
    engine = wasmtime.Engine()
    artifact = wasmtime.Module(engine, TWO_FUNCTIONS.decode()).serialize()
    meta = ArtifactMeta(size=len(artifact), min_memory_bytes=0, min_table_elements=0)
    store = ArtifactStore(tmp_path, MiB, "0" * 32, mac_key=KEY)
    store.save(engine, "a" * 64, artifact, meta)
    assert store.load(engine, "a" * 64) is not None

    store.close()

    assert store.load(engine, "a" * 64) is None
    assert store.save(engine, "b" * 64, artifact, meta) is not None  # served, not stored
    assert sorted(path.name for path in (tmp_path / ("0" * 32)).iterdir()) == [
        "a" * 64 + ".cwasm",
        "a" * 64 + ".json",
    ]


def test_the_disk_cache_is_bounded_by_bytes(tmp_path: Path) -> None:
    with cached(tmp_path, disk_cache_max_bytes=200_000) as sandbox:
        for index in range(12):
            sandbox.prepare(variant(200 + index))

    stored = [path for path in tmp_path.glob("*/*") if path.is_file()]
    assert 0 < len(artifacts(tmp_path)) < 12
    assert sum(path.stat().st_size for path in stored) <= 200_000


def test_the_old_key_file_is_deleted_only_if_it_is_the_one_we_made(tmp_path: Path) -> None:
    ours, theirs, linked = tmp_path / "ours", tmp_path / "theirs", tmp_path / "linked"
    for directory in (ours, theirs, linked):
        directory.mkdir(mode=0o700)
    (ours / "secret").write_bytes(secrets.token_bytes(32))
    (ours / "secret").chmod(0o600)
    (theirs / "secret").write_bytes(secrets.token_bytes(32))
    (theirs / "secret").chmod(0o600)
    os.chown(theirs / "secret", STRANGER_UID, STRANGER_UID)
    target = tmp_path / "elsewhere"
    target.write_bytes(secrets.token_bytes(32))
    target.chmod(0o600)
    (linked / "secret").symlink_to(target)

    for directory in (ours, theirs, linked):
        with cached(directory):
            pass

    assert not (ours / "secret").exists()
    assert (theirs / "secret").lstat().st_uid == STRANGER_UID
    assert (linked / "secret").is_symlink()
    assert target.stat().st_size == 32


def test_processes_sharing_a_directory_agree(tmp_path: Path) -> None:
    sandboxes = [cached(tmp_path, max_concurrency=1) for _ in range(3)]
    results: list[bytes] = []
    try:

        def work(sandbox: Sandbox) -> None:
            for index in range(5):
                compiled = sandbox.prepare(variant(300 + index))
                results.append(sandbox.run(compiled, RunRequest()).stdout)

        threads = [threading.Thread(target=work, args=(s,)) for s in sandboxes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for sandbox in sandboxes:
            sandbox.close()

    assert sorted(results) == sorted([greeting(300 + i) for i in range(5)] * 3)
    assert len(artifacts(tmp_path)) == 5


def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)

    with pytest.raises(SandboxError, match="not writable by group or others"):
        cached(shared)


def test_a_directory_of_another_owner_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, STRANGER_UID, STRANGER_UID)

    with pytest.raises(SandboxError, match="owned by this user"):
        cached(foreign)


def test_cache_files_are_private_and_no_key_is_stored(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with cached(cache) as sandbox:
        assert sandbox.run(sandbox.prepare(variant(5)), RunRequest()).outcome is Outcome.SUCCESS

    assert cache.stat().st_mode & 0o777 == 0o700
    files = [path for path in cache.rglob("*") if path.is_file()]
    assert {path.suffix for path in files} == {".cwasm", ".json"}
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in files)
    assert not any(
        KEY in path.read_bytes() or KEY.hex().encode() in path.read_bytes() for path in files
    )
