"""The modules the benchmarks run, as WebAssembly binaries (what a client would upload)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import wasmtime

from wasmwiz.sandbox import load_example

HERE = Path(__file__).resolve().parent
SHA256_WAT = HERE / "sha256.wat"
SHA256_WASM = HERE / "sha256.wasm"
NODE_RUNNER = HERE / "node_wasi.mjs"

_FLOOD = """(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4096))
    (loop $l
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $l))))"""

# HOST_CALLS calls of fd_write, one byte each: what a host call costs, its loop aside.
HOST_CALLS = 10_000
_HOST_CALLS = f"""(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x")
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 1))
    (loop $l
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {HOST_CALLS}))))))"""

# About 10 ms of guest code (3 million loop turns), printing nothing: a short real run.
_BUSY = """(module (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 3000000))))))"""

# Burns CPU until the execution timeout stops it.
_SPIN = """(module (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"""


def binary(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


@cache
def hello() -> bytes:
    return binary(load_example("hello").decode())


@cache
def echo() -> bytes:
    return binary(load_example("echo").decode())


def sha256() -> bytes:
    """The committed binary; bench/cpu.py checks it is what sha256.wat converts to."""
    return SHA256_WASM.read_bytes()


@cache
def flood() -> bytes:
    return binary(_FLOOD)


@cache
def host_calls() -> bytes:
    return binary(_HOST_CALLS)


@cache
def busy() -> bytes:
    return binary(_BUSY)


@cache
def spin() -> bytes:
    return binary(_SPIN)


def big_module(target_bytes: int = 2 * 1024 * 1024, variant: int = 0) -> bytes:
    """An ordinary ~2 MB module: many small distinct functions, the first one called.

    Deterministic, so its digest is the same on every run (a fresh VAR_DIR still makes its
    first run a cold compile). Each function is plain integer arithmetic: nothing that
    trips the sandbox's compile limits, just a lot of code, as a large program has.
    Each `variant` differs in one constant per function: the same size and compile
    work, another digest, so each one's first run is a cold compile of its own.
    """
    header = """(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "big\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 4))
    (drop (call $f0 (i32.const 7)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
"""
    body = "\n".join(
        f"    (local.set $x (i32.add (i32.mul (local.get $x) (i32.const {31 + step}))"
        f" (i32.xor (local.get $x) (i32.const {step * 7919 + variant}))))"
        for step in range(24)
    )
    one = len(binary(header + _function(0, body) + ")"))
    per_function = len(binary(header + _function(0, body) + _function(1, body) + ")")) - one
    count = 1 + max(0, (target_bytes - one) // per_function)
    return binary(header + "\n".join(_function(index, body) for index in range(count)) + ")")


def _function(index: int, body: str) -> str:
    return (
        f"  (func $f{index} (param $x i32) (result i32)\n{body}\n"
        f"    (i32.add (local.get $x) (i32.const {index})))\n"
    )
