/*
 * Lua 5.4 on wasm32-wasi without setjmp/longjmp: included by lua.h (build.py passes
 * -DLUA_USER_H="lua_wasi.h"), before the places in Lua's sources that read these macros.
 *
 * wasi-libc implements setjmp/longjmp with WebAssembly's exception-handling proposal,
 * which WasmWiz's engine leaves off by default (docs/security.md). Without it nothing can
 * unwind the C stack, so Lua's error "throw" cannot return to the protected call that
 * would catch it: this build reports the error and ends the program with status 1
 * instead. The consequence, documented in docs/runtimes.md: pcall, xpcall, load's error
 * result and coroutine.resume cannot catch errors, and coroutine.yield cannot suspend.
 */
#ifndef WASMWIZ_LUA_WASI_H
#define WASMWIZ_LUA_WASI_H

#include <stdio.h>

struct lua_State;

/* Reports the error on top of L's stack (or what `status` means) and exits with 1.
 * `nested`: the error was raised inside a pcall, xpcall, load or coroutine, which a
 * Lua with unwinding would have caught. */
_Noreturn void wasmwiz_lua_throw(struct lua_State *L, int status, int nested);

/* Used by ldo.c only, where `c` is its struct lua_longjmp and G() is defined. */
#define LUAI_THROW(L, c) \
    wasmwiz_lua_throw(L, (c)->status, (c)->previous != NULL || L != G(L)->mainthread)
#define LUAI_TRY(L, c, a) { a }
#define luai_jmpbuf int /* unused */

/* lstate.h would include <signal.h> for sig_atomic_t; wasi-libc has no signals. */
#define l_signalT int

/* WASI has no processes and a run has no files: os.execute reports no shell,
 * os.tmpname and io.tmpfile fail with an error instead of failing to link. */
#define l_system(cmd) ((cmd) == NULL ? 0 : -1)
#define LUA_TMPNAMBUFSIZE 32
#define lua_tmpnam(b, e) { (void)(b); (e) = 1; }
FILE *wasmwiz_tmpfile(void);
#define tmpfile wasmwiz_tmpfile

#endif
