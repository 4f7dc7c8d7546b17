;; SHA-256 of stdin, printed as 64 hex digits and a newline: the CPU-bound benchmark module.
;; Hand-written WebAssembly text (FIPS 180-4), so it needs no toolchain; sha256.wasm is this
;; file converted by wasmtime's wat2wasm, and bench/cpu.py checks the two agree.
;; Reads at most 1 MiB (the service's MAX_INPUT_SIZE); the rest of stdin is ignored.
;;
;; Memory: 0 iovec, 8 byte count, 256 K[64], 512 H[8], 1024 W[64], 2048 hex output,
;; 65536 the input and its padding.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  ;; 64 KiB of tables, 1 MiB of input, one page of room for the padding.
  (memory (export "memory") 18)

  (func $constants
    (i32.store (i32.const 256) (i32.const 0x428a2f98)) (i32.store (i32.const 260) (i32.const 0x71374491))
    (i32.store (i32.const 264) (i32.const 0xb5c0fbcf)) (i32.store (i32.const 268) (i32.const 0xe9b5dba5))
    (i32.store (i32.const 272) (i32.const 0x3956c25b)) (i32.store (i32.const 276) (i32.const 0x59f111f1))
    (i32.store (i32.const 280) (i32.const 0x923f82a4)) (i32.store (i32.const 284) (i32.const 0xab1c5ed5))
    (i32.store (i32.const 288) (i32.const 0xd807aa98)) (i32.store (i32.const 292) (i32.const 0x12835b01))
    (i32.store (i32.const 296) (i32.const 0x243185be)) (i32.store (i32.const 300) (i32.const 0x550c7dc3))
    (i32.store (i32.const 304) (i32.const 0x72be5d74)) (i32.store (i32.const 308) (i32.const 0x80deb1fe))
    (i32.store (i32.const 312) (i32.const 0x9bdc06a7)) (i32.store (i32.const 316) (i32.const 0xc19bf174))
    (i32.store (i32.const 320) (i32.const 0xe49b69c1)) (i32.store (i32.const 324) (i32.const 0xefbe4786))
    (i32.store (i32.const 328) (i32.const 0x0fc19dc6)) (i32.store (i32.const 332) (i32.const 0x240ca1cc))
    (i32.store (i32.const 336) (i32.const 0x2de92c6f)) (i32.store (i32.const 340) (i32.const 0x4a7484aa))
    (i32.store (i32.const 344) (i32.const 0x5cb0a9dc)) (i32.store (i32.const 348) (i32.const 0x76f988da))
    (i32.store (i32.const 352) (i32.const 0x983e5152)) (i32.store (i32.const 356) (i32.const 0xa831c66d))
    (i32.store (i32.const 360) (i32.const 0xb00327c8)) (i32.store (i32.const 364) (i32.const 0xbf597fc7))
    (i32.store (i32.const 368) (i32.const 0xc6e00bf3)) (i32.store (i32.const 372) (i32.const 0xd5a79147))
    (i32.store (i32.const 376) (i32.const 0x06ca6351)) (i32.store (i32.const 380) (i32.const 0x14292967))
    (i32.store (i32.const 384) (i32.const 0x27b70a85)) (i32.store (i32.const 388) (i32.const 0x2e1b2138))
    (i32.store (i32.const 392) (i32.const 0x4d2c6dfc)) (i32.store (i32.const 396) (i32.const 0x53380d13))
    (i32.store (i32.const 400) (i32.const 0x650a7354)) (i32.store (i32.const 404) (i32.const 0x766a0abb))
    (i32.store (i32.const 408) (i32.const 0x81c2c92e)) (i32.store (i32.const 412) (i32.const 0x92722c85))
    (i32.store (i32.const 416) (i32.const 0xa2bfe8a1)) (i32.store (i32.const 420) (i32.const 0xa81a664b))
    (i32.store (i32.const 424) (i32.const 0xc24b8b70)) (i32.store (i32.const 428) (i32.const 0xc76c51a3))
    (i32.store (i32.const 432) (i32.const 0xd192e819)) (i32.store (i32.const 436) (i32.const 0xd6990624))
    (i32.store (i32.const 440) (i32.const 0xf40e3585)) (i32.store (i32.const 444) (i32.const 0x106aa070))
    (i32.store (i32.const 448) (i32.const 0x19a4c116)) (i32.store (i32.const 452) (i32.const 0x1e376c08))
    (i32.store (i32.const 456) (i32.const 0x2748774c)) (i32.store (i32.const 460) (i32.const 0x34b0bcb5))
    (i32.store (i32.const 464) (i32.const 0x391c0cb3)) (i32.store (i32.const 468) (i32.const 0x4ed8aa4a))
    (i32.store (i32.const 472) (i32.const 0x5b9cca4f)) (i32.store (i32.const 476) (i32.const 0x682e6ff3))
    (i32.store (i32.const 480) (i32.const 0x748f82ee)) (i32.store (i32.const 484) (i32.const 0x78a5636f))
    (i32.store (i32.const 488) (i32.const 0x84c87814)) (i32.store (i32.const 492) (i32.const 0x8cc70208))
    (i32.store (i32.const 496) (i32.const 0x90befffa)) (i32.store (i32.const 500) (i32.const 0xa4506ceb))
    (i32.store (i32.const 504) (i32.const 0xbef9a3f7)) (i32.store (i32.const 508) (i32.const 0xc67178f2))
    (i32.store (i32.const 512) (i32.const 0x6a09e667))
    (i32.store (i32.const 516) (i32.const 0xbb67ae85))
    (i32.store (i32.const 520) (i32.const 0x3c6ef372))
    (i32.store (i32.const 524) (i32.const 0xa54ff53a))
    (i32.store (i32.const 528) (i32.const 0x510e527f))
    (i32.store (i32.const 532) (i32.const 0x9b05688c))
    (i32.store (i32.const 536) (i32.const 0x1f83d9ab))
    (i32.store (i32.const 540) (i32.const 0x5be0cd19)))

  ;; Words are big-endian in SHA-256 and little-endian in wasm memory.
  (func $bswap (param $x i32) (result i32)
    (i32.or
      (i32.and (i32.rotl (local.get $x) (i32.const 8)) (i32.const 0x00ff00ff))
      (i32.and (i32.rotr (local.get $x) (i32.const 8)) (i32.const 0xff00ff00))))

  (func $block (param $p i32)
    (local $t i32) (local $w2 i32) (local $w15 i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    (local $e i32) (local $f i32) (local $g i32) (local $h i32)
    (local $t1 i32) (local $t2 i32)
    ;; The message schedule W[0..64].
    (loop $load
      (i32.store offset=1024 (i32.shl (local.get $t) (i32.const 2))
        (call $bswap (i32.load (i32.add (local.get $p) (i32.shl (local.get $t) (i32.const 2))))))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br_if $load (i32.lt_u (local.get $t) (i32.const 16))))
    (loop $extend
      (local.set $w15 (i32.load offset=964 (i32.shl (local.get $t) (i32.const 2))))
      (local.set $w2 (i32.load offset=1016 (i32.shl (local.get $t) (i32.const 2))))
      (i32.store offset=1024 (i32.shl (local.get $t) (i32.const 2))
        (i32.add
          (i32.add
            (i32.load offset=960 (i32.shl (local.get $t) (i32.const 2)))
            (i32.xor (i32.xor (i32.rotr (local.get $w15) (i32.const 7))
                              (i32.rotr (local.get $w15) (i32.const 18)))
                     (i32.shr_u (local.get $w15) (i32.const 3))))
          (i32.add
            (i32.load offset=996 (i32.shl (local.get $t) (i32.const 2)))
            (i32.xor (i32.xor (i32.rotr (local.get $w2) (i32.const 17))
                              (i32.rotr (local.get $w2) (i32.const 19)))
                     (i32.shr_u (local.get $w2) (i32.const 10))))))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br_if $extend (i32.lt_u (local.get $t) (i32.const 64))))
    (local.set $a (i32.load (i32.const 512)))
    (local.set $b (i32.load (i32.const 516)))
    (local.set $c (i32.load (i32.const 520)))
    (local.set $d (i32.load (i32.const 524)))
    (local.set $e (i32.load (i32.const 528)))
    (local.set $f (i32.load (i32.const 532)))
    (local.set $g (i32.load (i32.const 536)))
    (local.set $h (i32.load (i32.const 540)))
    (local.set $t (i32.const 0))
    (loop $round
      ;; t1 = h + S1(e) + ch(e, f, g) + K[t] + W[t]
      (local.set $t1
        (i32.add
          (i32.add
            (i32.add (local.get $h)
              (i32.xor (i32.xor (i32.rotr (local.get $e) (i32.const 6))
                                (i32.rotr (local.get $e) (i32.const 11)))
                       (i32.rotr (local.get $e) (i32.const 25))))
            (i32.xor (i32.and (local.get $e) (local.get $f))
                     (i32.and (i32.xor (local.get $e) (i32.const -1)) (local.get $g))))
          (i32.add
            (i32.load offset=256 (i32.shl (local.get $t) (i32.const 2)))
            (i32.load offset=1024 (i32.shl (local.get $t) (i32.const 2))))))
      ;; t2 = S0(a) + maj(a, b, c)
      (local.set $t2
        (i32.add
          (i32.xor (i32.xor (i32.rotr (local.get $a) (i32.const 2))
                            (i32.rotr (local.get $a) (i32.const 13)))
                   (i32.rotr (local.get $a) (i32.const 22)))
          (i32.xor (i32.xor (i32.and (local.get $a) (local.get $b))
                            (i32.and (local.get $a) (local.get $c)))
                   (i32.and (local.get $b) (local.get $c)))))
      (local.set $h (local.get $g))
      (local.set $g (local.get $f))
      (local.set $f (local.get $e))
      (local.set $e (i32.add (local.get $d) (local.get $t1)))
      (local.set $d (local.get $c))
      (local.set $c (local.get $b))
      (local.set $b (local.get $a))
      (local.set $a (i32.add (local.get $t1) (local.get $t2)))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $t) (i32.const 64))))
    (i32.store (i32.const 512) (i32.add (i32.load (i32.const 512)) (local.get $a)))
    (i32.store (i32.const 516) (i32.add (i32.load (i32.const 516)) (local.get $b)))
    (i32.store (i32.const 520) (i32.add (i32.load (i32.const 520)) (local.get $c)))
    (i32.store (i32.const 524) (i32.add (i32.load (i32.const 524)) (local.get $d)))
    (i32.store (i32.const 528) (i32.add (i32.load (i32.const 528)) (local.get $e)))
    (i32.store (i32.const 532) (i32.add (i32.load (i32.const 532)) (local.get $f)))
    (i32.store (i32.const 536) (i32.add (i32.load (i32.const 536)) (local.get $g)))
    (i32.store (i32.const 540) (i32.add (i32.load (i32.const 540)) (local.get $h))))

  (func $hex (param $nibble i32) (result i32)
    (select
      (i32.add (local.get $nibble) (i32.const 48))
      (i32.add (local.get $nibble) (i32.const 87))
      (i32.lt_u (local.get $nibble) (i32.const 10))))

  (func (export "_start")
    (local $len i32) (local $n i32) (local $total i32) (local $p i32) (local $i i32)
    (local $word i32)
    (call $constants)
    ;; Read stdin to the end (or 1 MiB) at 65536.
    (block $eof
      (loop $read
        (br_if $eof (i32.ge_u (local.get $len) (i32.const 1048576)))
        (i32.store (i32.const 0) (i32.add (i32.const 65536) (local.get $len)))
        (i32.store (i32.const 4) (i32.sub (i32.const 1048576) (local.get $len)))
        (br_if $eof (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $len (i32.add (local.get $len) (local.get $n)))
        (br $read)))
    ;; Padding: 0x80, zeros, then the length in bits as a 64-bit big-endian number.
    (local.set $total
      (i32.and (i32.add (local.get $len) (i32.const 72)) (i32.const -64)))
    (i32.store8 (i32.add (i32.const 65536) (local.get $len)) (i32.const 0x80))
    (memory.fill
      (i32.add (i32.const 65537) (local.get $len))
      (i32.const 0)
      (i32.sub (i32.sub (local.get $total) (local.get $len)) (i32.const 1)))
    (i32.store (i32.add (i32.const 65528) (local.get $total))
      (call $bswap (i32.shr_u (local.get $len) (i32.const 29))))
    (i32.store (i32.add (i32.const 65532) (local.get $total))
      (call $bswap (i32.shl (local.get $len) (i32.const 3))))
    (local.set $p (i32.const 65536))
    (loop $blocks
      (call $block (local.get $p))
      (local.set $p (i32.add (local.get $p) (i32.const 64)))
      (br_if $blocks (i32.lt_u (local.get $p) (i32.add (i32.const 65536) (local.get $total)))))
    ;; Eight words, most significant nibble first.
    (loop $digits
      (local.set $word (i32.load offset=512 (i32.shl (i32.shr_u (local.get $i) (i32.const 3)) (i32.const 2))))
      (i32.store8 offset=2048 (local.get $i)
        (call $hex (i32.and
          (i32.shr_u (local.get $word)
            (i32.sub (i32.const 28) (i32.shl (i32.and (local.get $i) (i32.const 7)) (i32.const 2))))
          (i32.const 15))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $digits (i32.lt_u (local.get $i) (i32.const 64))))
    (i32.store8 (i32.const 2112) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 2048))
    (i32.store (i32.const 4) (i32.const 65))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
