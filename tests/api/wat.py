"""Small WebAssembly text programs the API tests send."""

_PRELUDE = """
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
"""


def printing(text: str) -> str:
    escaped = "".join(f"\\{byte:02x}" for byte in text.encode())
    return f"""(module {_PRELUDE}
  (data (i32.const 16) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const {len(text.encode())}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


HELLO = printing("Hello, WasmWiz!\n")

EXIT_3 = f"""(module {_PRELUDE}
  (func (export "_start") (call $proc_exit (i32.const 3))))"""

UNREACHABLE = """(module (memory (export "memory") 1) (func (export "_start") unreachable))"""

INFINITE_LOOP = """(module (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"""

RECURSION = """(module (memory (export "memory") 1)
  (func $f (call $f))
  (func (export "_start") (call $f)))"""

MEMORY_BOMB = """(module (memory (export "memory") 1)
  (func (export "_start")
    (loop $l
      (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))"""

# Copies stdin to stdout until end of input.
ECHO = f"""(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  {_PRELUDE}
  (func (export "_start") (local $n i32)
    (loop $l
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 32768))
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (call $proc_exit (i32.const 1))))
      (local.set $n (i32.load (i32.const 8)))
      (if (i32.eqz (local.get $n)) (then (return)))
      (i32.store (i32.const 4) (local.get $n))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $l))))"""

# Prints stdout forever, 4 KiB at a time.
FLOOD = f"""(module {_PRELUDE}
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 4096))
    (loop $l
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $l))))"""

# Prints argv then environ, each string followed by a newline (NULs replaced).
ARGS_AND_ENV = f"""(module
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  {_PRELUDE}
  (func $print_block (param $ptrs i32) (param $count i32) (param $buf i32) (param $size i32)
    (local $i i32)
    ;; turn every NUL in the string block into a newline, then print the block
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $size)))
      (if (i32.eqz (i32.load8_u (i32.add (local.get $buf) (local.get $i))))
        (then (i32.store8 (i32.add (local.get $buf) (local.get $i)) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.store (i32.const 0) (local.get $buf))
    (i32.store (i32.const 4) (local.get $size))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 8192)))
    (call $print_block (i32.const 1024) (i32.load (i32.const 16)) (i32.const 8192)
      (i32.load (i32.const 20)))
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store8 (i32.const 32) (i32.const 45))
    (i32.store8 (i32.const 33) (i32.const 10))
    (i32.store (i32.const 4) (i32.const 2))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_get (i32.const 2048) (i32.const 16384)))
    (call $print_block (i32.const 2048) (i32.load (i32.const 16)) (i32.const 16384)
      (i32.load (i32.const 20)))))"""

# Sleeps 60 s through poll_oneoff with one relative clock subscription.
SLEEP_60 = f"""(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  {_PRELUDE}
  (func (export "_start")
    ;; subscription at 0: userdata 0, tag 0 (clock), clock id 1 (monotonic),
    ;; timeout 60e9 ns, precision 0, flags 0 (relative)
    (i64.store (i32.const 0) (i64.const 0))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 60000000000))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"""

UNKNOWN_IMPORT = """(module (import "env" "foo" (func))
  (memory (export "memory") 1) (func (export "_start")))"""

COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
