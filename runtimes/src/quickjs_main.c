/*
 * WasmWiz's JavaScript runtime: QuickJS-ng running the whole of stdin as a global script.
 *
 * The program's output goes to stdout (print, console.log/info/debug) and stderr
 * (console.error/warn). A syntax error, an uncaught exception or an unhandled promise
 * rejection is printed to stderr and the exit status is 1. The run's arguments are in
 * `scriptArgs` (argv[0], the program name, first, as in qjs). The script may use
 * top-level await; there are no timers, files or modules (QuickJS-ng's std and os
 * modules are not part of its PyPI source distribution, and a run has no files).
 *
 * Built by runtimes/build.py; docs/runtimes.md says what ships and why.
 */
#include <stdio.h>
#include <stdlib.h>

#include "quickjs.h"

/* Deep recursion should end in a RangeError that the script can catch. QuickJS measures
 * its depth on the C stack in linear memory (1 MiB, build.py), but a JS call takes 3 to
 * 4 times as much again of wasmtime's own stack, which WasmWiz caps at 1 MiB. This limit
 * (about 600 plain calls deep) kept every recursion we tried inside both: plain calls,
 * callbacks through built-ins, getters, proxies, toString. Recursion in C alone (the
 * parser on 1,000 nested parentheses, JSON nested 100,000 deep) can still exhaust the
 * wasm stack first; such a run ends as a stack overflow, not with a RangeError. */
#define JS_STACK_BYTES (192 * 1024)

/* console.log's formatting of non-strings (objects, arrays, errors...), in JavaScript. */
static const char inspect_js[] = {
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wc23-extensions"
#embed "inspect.js"
#pragma clang diagnostic pop
    , 0};

static JSValue inspect_fn;

typedef struct Rejection {
    JSValue promise;
    JSValue reason;
} Rejection;

static Rejection *rejections;
static size_t rejection_count, rejection_capacity;

static char *read_all(FILE *in, size_t *length) {
    size_t capacity = 64 * 1024, used = 0;
    char *buffer = malloc(capacity);
    while (buffer) {
        used += fread(buffer + used, 1, capacity - used - 1, in);
        if (used < capacity - 1) {
            if (ferror(in))
                break;
            buffer[used] = '\0'; /* JS_Eval needs the source NUL-terminated */
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

/* Writes `value` as console.log shows it: strings as they are, anything else through
 * inspect.js, and if that fails (a throwing getter, out of memory) through String(). */
static void write_value(JSContext *ctx, FILE *out, JSValueConst value) {
    JSValue shown = JS_IsString(value) ? JS_DupValue(ctx, value)
                                       : JS_Call(ctx, inspect_fn, JS_UNDEFINED, 1, &value);
    if (JS_IsException(shown)) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        shown = JS_DupValue(ctx, value);
    }
    size_t length;
    const char *text = JS_ToCStringLen(ctx, &length, shown);
    JS_FreeValue(ctx, shown);
    if (text) {
        fwrite(text, 1, length, out);
        JS_FreeCString(ctx, text);
    } else {
        JS_FreeValue(ctx, JS_GetException(ctx));
        fputs("[value that cannot be shown]", out);
    }
}

/* print and console.*: magic 0 writes to stdout, 1 to stderr. Each call is flushed, so
 * what a program printed before a timeout or a trap is not lost in a buffer. */
static JSValue js_log(JSContext *ctx, JSValueConst this_val, int argc, JSValueConst *argv,
                      int magic) {
    (void)this_val;
    FILE *out = magic ? stderr : stdout;
    for (int i = 0; i < argc; i++) {
        if (i)
            fputc(' ', out);
        write_value(ctx, out, argv[i]);
    }
    fputc('\n', out);
    fflush(out);
    return JS_UNDEFINED;
}

static void report(JSContext *ctx, const char *prefix, JSValueConst error) {
    fputs(*prefix || JS_IsError(error) ? prefix : "Uncaught ", stderr); /* throw 42 */
    write_value(ctx, stderr, error);
    fputc('\n', stderr);
    fflush(stderr);
}

static void track_rejection(JSContext *ctx, JSValueConst promise, JSValueConst reason,
                            bool is_handled, void *opaque) {
    (void)opaque;
    if (is_handled) {
        for (size_t i = 0; i < rejection_count; i++) {
            if (JS_VALUE_GET_PTR(rejections[i].promise) == JS_VALUE_GET_PTR(promise)) {
                JS_FreeValue(ctx, rejections[i].promise);
                JS_FreeValue(ctx, rejections[i].reason);
                rejections[i] = rejections[--rejection_count];
                return;
            }
        }
        return;
    }
    if (rejection_count == rejection_capacity) {
        size_t capacity = rejection_capacity ? rejection_capacity * 2 : 8;
        Rejection *grown = realloc(rejections, capacity * sizeof *grown);
        if (!grown)
            return;
        rejections = grown;
        rejection_capacity = capacity;
    }
    rejections[rejection_count].promise = JS_DupValue(ctx, promise);
    rejections[rejection_count].reason = JS_DupValue(ctx, reason);
    rejection_count++;
}

static JSValue logger(JSContext *ctx, const char *name, int to_stderr) {
    return JS_NewCFunctionMagic(ctx, js_log, name, 1, JS_CFUNC_generic_magic, to_stderr);
}

static void define_globals(JSContext *ctx, int argc, char **argv) {
    JSValue global = JS_GetGlobalObject(ctx);
    JS_SetPropertyStr(ctx, global, "print", logger(ctx, "print", 0));

    JSValue console = JS_NewObject(ctx);
    JS_SetPropertyStr(ctx, console, "log", logger(ctx, "log", 0));
    JS_SetPropertyStr(ctx, console, "info", logger(ctx, "info", 0));
    JS_SetPropertyStr(ctx, console, "debug", logger(ctx, "debug", 0));
    JS_SetPropertyStr(ctx, console, "error", logger(ctx, "error", 1));
    JS_SetPropertyStr(ctx, console, "warn", logger(ctx, "warn", 1));
    JS_SetPropertyStr(ctx, global, "console", console);

    JSValue args = JS_NewArray(ctx);
    for (int i = 0; i < argc; i++)
        JS_SetPropertyUint32(ctx, args, (uint32_t)i, JS_NewString(ctx, argv[i]));
    JS_SetPropertyStr(ctx, global, "scriptArgs", args);
    JS_FreeValue(ctx, global);
}

int main(int argc, char **argv) {
    /* One write per console.log line, not one per 1 KiB (each write is a host call). */
    static char out_buffer[64 * 1024];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);

    size_t length;
    char *source = read_all(stdin, &length);
    if (!source) {
        fputs("quickjs: cannot read the program from stdin\n", stderr);
        return 1;
    }
    JSRuntime *rt = JS_NewRuntime();
    JSContext *ctx = rt ? JS_NewContext(rt) : NULL;
    if (!ctx) {
        fputs("quickjs: out of memory\n", stderr);
        return 1;
    }
    JS_SetMaxStackSize(rt, JS_STACK_BYTES);
    JS_SetHostPromiseRejectionTracker(rt, track_rejection, NULL);
    define_globals(ctx, argc, argv);
    inspect_fn = JS_Eval(ctx, inspect_js, sizeof inspect_js - 1, "<inspect>", JS_EVAL_TYPE_GLOBAL);
    if (JS_IsException(inspect_fn)) {
        report(ctx, "quickjs: internal error: ", JS_GetException(ctx));
        return 1;
    }

    /* Async: the script may use top-level await; its completion is a promise. */
    JSValue result =
        JS_Eval(ctx, source, length, "stdin", JS_EVAL_TYPE_GLOBAL | JS_EVAL_FLAG_ASYNC);
    if (JS_IsException(result)) {
        report(ctx, "", JS_GetException(ctx));
        return 1;
    }
    JS_PromiseMarkAsHandled(ctx, result); /* reported below, not as an unhandled rejection */
    for (;;) {
        JSContext *job_ctx;
        int ran = JS_ExecutePendingJob(rt, &job_ctx);
        if (ran == 0)
            break;
        if (ran < 0) {
            report(job_ctx, "", JS_GetException(job_ctx));
            return 1;
        }
    }
    int status = 0;
    if (JS_PromiseState(ctx, result) == JS_PROMISE_REJECTED) {
        JSValue error = JS_PromiseResult(ctx, result);
        report(ctx, "", error);
        JS_FreeValue(ctx, error);
        status = 1;
    }
    for (size_t i = 0; i < rejection_count; i++) {
        report(ctx, "Uncaught (in promise) ", rejections[i].reason);
        status = 1;
    }
    /* The process ends here: freeing the heap object by object would only cost time. */
    fflush(stdout);
    return status;
}
