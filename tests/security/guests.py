"""Hostile guests, as WebAssembly text or binaries, for the security suite."""

from __future__ import annotations

from tests.sandbox import wasm_builder

_FD_WRITE = """(import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))"""


def _printing_errnos(imports: str, calls: str, count: int) -> str:
    """A guest that stores `count` u32 results from `calls` at 1024.. and prints them raw."""
    return f"""(module {_FD_WRITE} {imports}
  (memory (export "memory") 2)
  (data (i32.const 200) "/etc/passwd")
  (data (i32.const 220) "../")
  (func (export "_start") (local $i i32) (local $out i32)
    (local.set $out (i32.const 1024))
    {calls}
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {count * 4}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


def _store(call: str) -> str:
    return f"""(i32.store (local.get $out) {call})
    (local.set $out (i32.add (local.get $out) (i32.const 4)))"""


def _for_fds(first: int, last: int, body: str) -> str:
    return f"""(local.set $i (i32.const {first}))
    (loop $next
      {body}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.le_u (local.get $i) (i32.const {last}))))"""


PATH_OPEN = """(import "wasi_snapshot_preview1" "path_open" (func $path_open
    (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"""


def path_open_probe() -> str:
    """path_open of /etc/passwd and ../ relative to every fd from 0 to 64: 130 errnos."""
    open_ = (
        "(call $path_open (local.get $i) (i32.const 1) (i32.const {ptr}) (i32.const {len})"
        " (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff)"
        " (i32.const 0) (i32.const 300))"
    )
    body = _store(open_.format(ptr=200, len=11)) + _store(open_.format(ptr=220, len=3))
    return _printing_errnos(PATH_OPEN, _for_fds(0, 64, body), 130)


def prestat_probe() -> str:
    """fd_prestat_get on every fd from 0 to 64: 65 errnos."""
    imports = """(import "wasi_snapshot_preview1" "fd_prestat_get"
        (func $prestat (param i32 i32) (result i32)))"""
    body = _store("(call $prestat (local.get $i) (i32.const 300))")
    return _printing_errnos(imports, _for_fds(0, 64, body), 65)


def socket_probe() -> str:
    """sock_accept, sock_recv, sock_send, sock_shutdown on fds 0 to 15: 64 errnos."""
    imports = """
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv"
    (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send"
    (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
"""
    body = (
        _store("(call $accept (local.get $i) (i32.const 0) (i32.const 300))")
        + _store(
            "(call $recv (local.get $i) (i32.const 400) (i32.const 1) (i32.const 0)"
            " (i32.const 300) (i32.const 304))"
        )
        + _store(
            "(call $send (local.get $i) (i32.const 400) (i32.const 1) (i32.const 0)"
            " (i32.const 300))"
        )
        + _store("(call $shutdown (local.get $i) (i32.const 3))")
    )
    return _printing_errnos(imports, _for_fds(0, 15, body), 64)


def replaced_calls_with_bad_pointers() -> str:
    """Every WASI call the sandbox implements itself, given pointers past memory: 10 errnos."""
    imports = """
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $now (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func $res (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
"""
    end = 2 * 65536
    calls = "\n".join(
        _store(call)
        for call in [
            f"(call $fd_write (i32.const 1) (i32.const {end - 4}) (i32.const 1) (i32.const 8))",
            "(call $fd_write (i32.const 1) (i32.const -8) (i32.const 1) (i32.const 8))",
            f"(call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const {end}))",
            f"(call $poll (i32.const {end - 8}) (i32.const 0) (i32.const 1) (i32.const 8))",
            f"(call $poll (i32.const 0) (i32.const {end}) (i32.const 1) (i32.const 8))",
            f"(call $now (i32.const 0) (i64.const 1) (i32.const {end - 4}))",
            "(call $now (i32.const 1) (i64.const 1) (i32.const -1))",
            f"(call $res (i32.const 0) (i32.const {end}))",
            f"(call $random (i32.const {end - 8}) (i32.const 16))",
            "(call $random (i32.const 0) (i32.const -1))",
        ]
    )
    return _printing_errnos(imports, calls, 10)


def proc_raise() -> str:
    imports = """(import "wasi_snapshot_preview1" "proc_raise"
        (func $raise (param i32) (result i32)))"""
    return _printing_errnos(imports, _store("(call $raise (i32.const 9))"), 1)


def args_sizes() -> str:
    """Prints argc and the argv buffer size (two u32), after reading argv with args_get."""
    imports = """
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
"""
    calls = """(drop (call $sizes (i32.const 1024) (i32.const 1028)))
    (drop (call $args (i32.const 4096) (i32.const 65536)))"""
    return _printing_errnos(imports, calls, 2)


def environ_probe() -> str:
    """Prints environ_sizes_get's two counts."""
    imports = """(import "wasi_snapshot_preview1" "environ_sizes_get"
        (func $sizes (param i32 i32) (result i32)))"""
    return _printing_errnos(imports, "(drop (call $sizes (i32.const 1024) (i32.const 1028)))", 2)


def writing_forever(fd: int) -> str:
    """Writes 1 MiB chunks to `fd` 1024 times: 1 GiB unless stopped."""
    return f"""(module {_FD_WRITE}
  (memory (export "memory") 17)
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 1048576))
    (loop $again
      (drop (call $fd_write (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1024))))))"""


def sleeping(*, absolute: bool) -> str:
    """poll_oneoff on the monotonic clock for an hour (relative, or absolute from now)."""
    timeout = "(i64.const 3600000000000)"
    if absolute:
        timeout = f"(i64.add (i64.load (i32.const 900)) {timeout})"
    return f"""(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $now (i32.const 1) (i64.const 1) (i32.const 900)))
    (i32.store8 (i32.const 520) (i32.const 0))
    (i32.store (i32.const 528) (i32.const 1))
    (i64.store (i32.const 536) {timeout})
    (i32.store16 (i32.const 552) (i32.const {int(absolute)}))
    (drop (call $poll (i32.const 512) (i32.const 600) (i32.const 1) (i32.const 700)))))"""


INFINITE_LOOP = '(module (func (export "_start") (loop $l (br $l))))'
START_LOOP = '(module (func $s (loop $l (br $l))) (start $s) (func (export "_start")))'
START_PRINTING_FOREVER = f"""(module {_FD_WRITE}
  (memory (export "memory") 1)
  (func $s
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 1000))
    (loop $l (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $l)))
  (start $s)
  (func (export "_start")))"""
MEMORY_GROW_LOOP = """(module (memory (export "memory") 1)
  (func (export "_start")
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))"""
HUGE_DECLARED_MEMORY = '(module (memory (export "memory") 60000) (func (export "_start")))'
HUGE_TABLE = '(module (table 10000000 funcref) (func (export "_start")))'
TABLE_GROW_LOOP = """(module (table $t 1 funcref)
  (func (export "_start")
    (loop $l
      (br_if $l (i32.ne (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1))))
    unreachable))"""
RECURSION = '(module (func $f (call $f)) (func (export "_start") (call $f)))'
IMPORTS_ENV_FOO = '(module (import "env" "foo" (func)) (func (export "_start")))'
THREADS = '(module (memory 1 1 shared) (func (export "_start")))'
MEMORY64 = '(module (memory i64 1) (func (export "_start")))'
MULTI_MEMORY = '(module (memory 1) (memory 1) (func (export "_start")))'
GC = '(module (type (struct (field i32))) (func (export "_start")))'
COMPONENT = b"\0asm\x0d\0\x01\0"
GARBAGE_WITH_MAGIC = b"\0asm\x01\0\0\0" + bytes(range(200, 256)) * 4
CORRUPT_SECTION = b"\0asm\x01\0\0\0" + b"\x01\x03\xff\xff\xff" + b"\x00\x01\x00"
INVALID_WAT = b'(module (func (export "_start") (i32.bogus)))'

DEEP_NESTING = wasm_builder.nested_blocks(50_000)
HUGE_BR_TABLE = wasm_builder.big_br_table(65_000)
MANY_FUNCTIONS = wasm_builder.many_functions(1_000_000)
SLOW_MANY_FUNCTIONS = wasm_builder.looping_functions(90_000)
MANY_LOCALS = wasm_builder.many_locals(40_000)
HUGE_BODY = wasm_builder.straight_line(1_000_000)
HUNGRY_TO_COMPILE = wasm_builder.many_functions(200_000)
