/*
 * Stands in for wasi-libc's <setjmp.h> when build.py compiles Lua: ldo.c includes it
 * unconditionally, and wasi-libc's refuses to compile without the exception-handling
 * proposal. lua_wasi.h defines Lua's error handling without setjmp, so nothing here.
 */
