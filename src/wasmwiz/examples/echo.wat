;; Echo: copies stdin to stdout until end of input.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 2)

  ;; Layout: iovec at 0 (buf, len), byte count at 8, a 64 KiB buffer at 65536.
  (func (export "_start")
    (local $n i32)
    (loop $copy
      ;; Read up to 64 KiB from stdin (fd 0).
      (i32.store (i32.const 0) (i32.const 65536))
      (i32.store (i32.const 4) (i32.const 65536))
      (br_if 1 (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $n (i32.load (i32.const 8)))
      ;; Zero bytes read means end of input.
      (br_if 1 (i32.eqz (local.get $n)))
      ;; Write exactly what was read to stdout (fd 1).
      (i32.store (i32.const 4) (local.get $n))
      (br_if 1 (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $copy))))
