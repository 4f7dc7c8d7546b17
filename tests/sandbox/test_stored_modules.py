"""Modules kept elsewhere under their digest: loaded only when no cache holds them."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox import (
    ModuleExport,
    ModuleImport,
    ModuleInterface,
    ModuleRefused,
    Outcome,
    RunRequest,
    Sandbox,
    SandboxError,
    load_example,
)


class Store:
    """Bytes by digest, counting how often each is read."""

    def __init__(self) -> None:
        self.contents: dict[str, bytes] = {}
        self.reads = 0

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        self.contents[sha256] = data
        return sha256

    def loader(self, sha256: str) -> Callable[[], bytes]:
        def load() -> bytes:
            self.reads += 1
            return self.contents[sha256]

        return load


def unique_hello() -> bytes:
    """hello.wat with a comment of its own: a digest no earlier test has cached."""
    return load_example("hello") + f"\n;; {secrets.token_hex(8)}\n".encode()


def test_a_cached_module_is_not_read_again(sandbox: Sandbox) -> None:
    store = Store()
    sha256 = store.put(unique_hello())

    first = sandbox.prepare_stored(sha256, store.loader(sha256))
    second = sandbox.prepare_stored(sha256, store.loader(sha256))

    assert store.reads == 1
    assert second is first
    assert first.sha256 == sha256
    result = sandbox.run(first, RunRequest())
    assert result.outcome is Outcome.SUCCESS
    assert result.stdout == b"Hello, WasmWiz!\n"


def test_the_disk_cache_answers_without_reading_the_bytes(tmp_path: Path) -> None:
    store = Store()
    sha256 = store.put(unique_hello())
    key = secrets.token_bytes(32)
    with Sandbox(cache_dir=tmp_path, cache_mac_key=key) as one:
        one.prepare_stored(sha256, store.loader(sha256))
    with Sandbox(cache_dir=tmp_path, cache_mac_key=key) as restarted:
        compiled = restarted.prepare_stored(sha256, store.loader(sha256))
        assert restarted.stats().compiles == 0

    assert store.reads == 1
    assert compiled.sha256 == sha256


def test_bytes_that_are_not_their_digest_are_a_fault_of_the_store(sandbox: Sandbox) -> None:
    sha256 = hashlib.sha256(b"what was stored").hexdigest()

    with pytest.raises(SandboxError, match="do not match their digest"):
        sandbox.prepare_stored(sha256, unique_hello)


def test_stored_bytes_are_refused_like_uploaded_ones(sandbox: Sandbox) -> None:
    store = Store()
    sha256 = store.put(b"\0asm\x01\0\0\0" + secrets.token_bytes(16))

    with pytest.raises(ModuleRefused) as refused:
        sandbox.prepare_stored(sha256, store.loader(sha256))
    assert refused.value.code in {ProblemCode.INVALID_WASM, ProblemCode.TRUNCATED_WASM}


@pytest.mark.anyio
async def test_execute_stored_runs_the_module(sandbox: Sandbox) -> None:
    store = Store()
    sha256 = store.put(unique_hello())

    result = await sandbox.execute_stored(sha256, store.loader(sha256), RunRequest())

    assert result.outcome is Outcome.SUCCESS
    assert result.module_sha256 == sha256


def test_describe_lists_imports_and_exports(sandbox: Sandbox) -> None:
    hello = Sandbox.describe(sandbox.prepare(unique_hello()))
    # The compiler accepts commands only (missing_start otherwise): extra exports listed.
    command = Sandbox.describe(
        sandbox.prepare(
            b'(module (memory (export "memory") 1) (func (export "_start")) '
            b'(global (export "g") i32 (i32.const 1)) (func (export "add")))'
        )
    )

    assert hello.imports == (ModuleImport("wasi_snapshot_preview1", "fd_write", "func"),)
    assert set(hello.exports) >= {ModuleExport("_start", "func"), ModuleExport("memory", "memory")}
    assert hello.is_command
    assert command.imports == ()
    assert command.exports == (
        ModuleExport("memory", "memory"),
        ModuleExport("_start", "func"),
        ModuleExport("g", "global"),
        ModuleExport("add", "func"),
    )
    assert command.is_command
    assert not ModuleInterface((), (ModuleExport("_start", "func"),)).is_command
