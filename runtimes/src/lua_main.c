/*
 * WasmWiz's Lua runtime: Lua 5.4 running the whole of stdin as one chunk.
 *
 * The standard libraries are open (io and os too: a run has no files, so opening one
 * fails with a message). The run's arguments are in `arg` (arg[0] is the program name)
 * and are the chunk's `...`, as with the lua command. A syntax or runtime error is
 * printed to stderr as the lua command prints it (with a traceback) and the exit status
 * is 1. lua_wasi.h says why this build cannot catch errors (pcall) and what that means.
 *
 * Built by runtimes/build.py; docs/runtimes.md says what ships and why.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

static const char progname[] = "lua";

static char *read_all(FILE *in, size_t *length) {
    size_t capacity = 64 * 1024, used = 0;
    char *buffer = malloc(capacity);
    while (buffer) {
        used += fread(buffer + used, 1, capacity - used, in);
        if (used < capacity) {
            if (ferror(in))
                break;
            *length = used;
            return buffer;
        }
        char *grown = realloc(buffer, capacity * 2);
        if (!grown)
            break;
        buffer = grown;
        capacity *= 2;
    }
    free(buffer);
    return NULL;
}

static void message(const char *text) {
    fprintf(stderr, "%s: %s\n", progname, text);
    fflush(stderr);
}

/* As lua.c's: the error message with a traceback, or what the error object is. */
static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Reached by every Lua error in this build (lua_wasi.h): LUAI_THROW cannot unwind. */
_Noreturn void wasmwiz_lua_throw(lua_State *L, int status, int nested) {
    static int throwing;
    const char *msg;
    if (throwing) { /* reporting the first error raised another: keep it short */
        message("error while reporting an error");
        exit(1);
    }
    throwing = 1;
    switch (status) {
    case LUA_YIELD:
        msg = "attempt to yield: coroutine.yield cannot suspend a coroutine in this build";
        break;
    case LUA_ERRMEM:
        msg = "not enough memory";
        break;
    case LUA_ERRERR:
        msg = "error in error handling";
        break;
    default:
        msg = lua_tostring(L, -1);
        if (msg == NULL)
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, -1));
    }
    /* An uncaught error has its traceback from msghandler, and so has one in a load
     * (the parser keeps the caller's handler); one in a pcall or a coroutine has not. */
    if (nested && status == LUA_ERRRUN && !strstr(msg, "\nstack traceback:") &&
        lua_checkstack(L, LUA_MINSTACK)) {
        luaL_traceback(L, L, msg, 1);
        msg = lua_tostring(L, -1);
    }
    message(msg);
    if (nested && status != LUA_YIELD)
        message("(this build cannot catch errors: pcall, xpcall, load and coroutine.resume "
                "end the program instead of returning them)");
    exit(1);
}

FILE *wasmwiz_tmpfile(void) {
    errno = ENOTSUP;
    return NULL;
}

int main(int argc, char **argv) {
    size_t length;
    char *source = read_all(stdin, &length);
    if (!source) {
        message("cannot read the program from stdin");
        return 1;
    }
    lua_State *L = luaL_newstate();
    if (!L) {
        message("not enough memory");
        return 1;
    }
    luaL_openlibs(L);
    lua_createtable(L, argc > 0 ? argc - 1 : 0, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, msghandler);
    int status = luaL_loadbuffer(L, source, length, "=stdin");
    free(source);
    if (status == LUA_OK) {
        for (int i = 1; i < argc; i++)
            lua_pushstring(L, argv[i]);
        status = lua_pcall(L, argc > 0 ? argc - 1 : 0, 0, 1);
    }
    if (status != LUA_OK) { /* only where errors unwind; see lua_wasi.h */
        const char *msg = lua_tostring(L, -1);
        message(msg ? msg : "(error object is not a string)");
        return 1;
    }
    lua_close(L); /* runs pending finalizers and closes io's standard files */
    return 0;
}
