;; Hello, WasmWiz! A minimal WASI program that writes one line to stdout.
(module
  ;; fd_write(fd, iovs, iovs_len, nwritten_out) -> errno
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  ;; WASI reads the guest's buffers from the memory exported as "memory".
  (memory (export "memory") 1)

  ;; The text to print lives at offset 16.
  (data (i32.const 16) "Hello, WasmWiz!\n")

  (func (export "_start")
    ;; One iovec at offset 0: { buf = 16, buf_len = 16 }.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 16))
    ;; Write it to stdout (fd 1); the byte count lands at offset 8.
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
