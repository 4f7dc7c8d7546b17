"""The Lua runtime runs Lua from stdin in the real sandbox; errors end it with status 1."""

from __future__ import annotations

import pytest

from tests.runtimes.conftest import RunProgram
from wasmwiz.sandbox import Outcome

CANNOT_CATCH = b"this build cannot catch errors"


@pytest.mark.parametrize(
    ("program", "stdout"),
    [
        ('print("Hello, world!")', "Hello, world!\n"),
        ("print(6 * 7, 7 // 2, 7 / 2, 2^10, 10 % 3)", "42\t3\t3.5\t1024.0\t1\n"),
        ("local s = 0 for i = 1, 1000000 do s = s + i end print(s)", "500000500000\n"),
        ('print(string.format("%5.2f|%d|%-4s|%x", math.pi, 42, "ab", 255))', " 3.14|42|ab  |ff\n"),
        (
            'local t = {"pear", "apple", "fig"} table.sort(t) print(table.concat(t, ","))\n'
            "local n = {5, 3, 9, 1} table.sort(n, function(a, b) return a > b end)"
            ' print(table.concat(n, " "))',
            "apple,fig,pear\n9 5 3 1\n",
        ),
        ('io.write("no newline") io.write(" then one\\n")', "no newline then one\n"),
        ("", ""),
    ],
    ids=["hello", "arithmetic", "loop", "string-format", "table-sort", "io-write", "empty"],
)
def test_programs_print_what_they_compute(
    run_program: RunProgram, program: str, stdout: str
) -> None:
    result = run_program("lua", program)

    assert result.outcome is Outcome.SUCCESS, result.stderr
    assert result.stdout.decode() == stdout
    assert result.stderr == b""


def test_the_run_arguments_are_arg_and_the_chunks_varargs(run_program: RunProgram) -> None:
    result = run_program("lua", "print(#arg, arg[1], arg[2], select('#', ...), ...)", "a", "b c")

    assert result.stdout == b"2\ta\tb c\t2\ta\tb c\n"


def test_files_and_processes_fail_with_a_message_not_a_trap(run_program: RunProgram) -> None:
    program = 'print(io.open("/etc/passwd")) print(io.tmpfile()) print(os.execute())'

    result = run_program("lua", program)

    assert result.outcome is Outcome.SUCCESS, result.stderr
    assert result.stdout.startswith(b"nil\t/etc/passwd: No such file or directory")
    assert result.stdout.endswith(b"\nfalse\n")


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("x = = 1", b"lua: stdin:2: unexpected symbol near '='\n"),
        ('error("x")', b"lua: stdin:2: x\nstack traceback:\n"),
        (
            "local t = nil\nprint(t.field)",
            b"lua: stdin:3: attempt to index a nil value (local 't')",
        ),
        ("print(1 + {})", b"lua: stdin:2: attempt to perform arithmetic on a table value"),
        ("error({})", b"lua: (error object is a table value)"),
        (
            "local function down(n) return 1 + down(n + 1) end down(1)",
            b"lua: stdin:2: stack overflow",
        ),
    ],
    ids=["syntax", "error", "nil-index", "arithmetic", "error-object", "stack-overflow"],
)
def test_errors_print_a_message_and_exit_1(
    run_program: RunProgram, program: str, message: bytes
) -> None:
    result = run_program("lua", f"print('before')\n{program}")

    assert result.outcome is Outcome.EXIT_NONZERO
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert CANNOT_CATCH not in result.stderr
    assert result.stdout == (b"" if b"unexpected symbol" in message else b"before\n")


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ('print(pcall(error, "inside pcall"))', b"lua: inside pcall\nstack traceback:\n"),
        ('print(load("x = = 1"))', b'lua: [string "x = = 1"]:1: unexpected symbol near'),
        (
            "coroutine.wrap(function() error('in a coroutine') end)()",
            b"lua: stdin:1: in a coroutine",
        ),
    ],
    ids=["pcall", "load", "coroutine"],
)
def test_errors_that_lua_would_catch_end_the_program_and_say_so(
    run_program: RunProgram, program: str, message: bytes
) -> None:
    result = run_program("lua", program)

    assert result.outcome is Outcome.EXIT_NONZERO
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert CANNOT_CATCH in result.stderr


def test_running_out_of_memory_is_an_error_not_a_trap(run_program: RunProgram) -> None:
    result = run_program("lua", 'local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(100) .. i end')

    # memory_limit when the memory ended within a few pages of the limit (the sandbox's
    # evidence), exit_nonzero otherwise: an exit with a message either way, never a trap.
    assert result.outcome in {Outcome.MEMORY_LIMIT, Outcome.EXIT_NONZERO}
    assert result.exit_code == 1
    assert result.stderr == b"lua: not enough memory\n"


def test_yield_ends_the_program_with_a_message(run_program: RunProgram) -> None:
    result = run_program("lua", "coroutine.wrap(function() coroutine.yield(1) end)()")

    assert result.outcome is Outcome.EXIT_NONZERO
    assert result.stderr.startswith(b"lua: attempt to yield: coroutine.yield cannot suspend")


def test_os_exit_sets_the_status(run_program: RunProgram) -> None:
    result = run_program("lua", 'io.write("bye\\n") os.exit(3)')

    assert result.outcome is Outcome.EXIT_NONZERO
    assert result.exit_code == 3
    assert result.stdout == b"bye\n"
