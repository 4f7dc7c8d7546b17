"""The QuickJS-ng runtime runs JavaScript from stdin in the real sandbox."""

from __future__ import annotations

import pytest

from tests.runtimes.conftest import RunProgram
from wasmwiz.sandbox import Outcome


@pytest.mark.parametrize(
    ("program", "stdout"),
    [
        ('console.log("Hello, world!")', "Hello, world!\n"),
        ("print(6 * 7, 2 ** 10, 7 / 2, 0.1 + 0.2)", "42 1024 3.5 0.30000000000000004\n"),
        ("let s = 0; for (let i = 1; i <= 1000000; i++) s += i; console.log(s)", "500000500000\n"),
        (
            'console.log(JSON.stringify({a: [1, "two", null], b: {c: true}}))',
            '{"a":[1,"two",null],"b":{"c":true}}\n',
        ),
        (
            "class Point { constructor(x, y) { this.x = x; this.y = y }"
            "  norm() { return Math.hypot(this.x, this.y) } }\n"
            "const p = new Point(3, 4); console.log(p.norm(), p, Point)",
            "5 Point { x: 3, y: 4 } [class Point]\n",
        ),
        (
            "console.log({a: 1, b: ['x', [2]]}, [1, , 3], new Map([[1, 'one']]), -0, 10n)",
            "{ a: 1, b: [ 'x', [ 2 ] ] } [ 1, <empty>, 3 ] Map(1) { 1 => 'one' } -0 10n\n",
        ),
        ("const v = await Promise.resolve('awaited'); console.log(v)", "awaited\n"),
        ("", ""),
    ],
    ids=["hello", "arithmetic", "loop", "json", "class", "inspect", "top-level-await", "empty"],
)
def test_programs_print_what_they_compute(
    run_program: RunProgram, program: str, stdout: str
) -> None:
    result = run_program("quickjs", program)

    assert result.outcome is Outcome.SUCCESS, result.stderr
    assert result.stdout.decode() == stdout
    assert result.stderr == b""


def test_console_error_writes_to_stderr(run_program: RunProgram) -> None:
    result = run_program("quickjs", 'console.error("bad", 1); console.warn("careful")')

    assert result.outcome is Outcome.SUCCESS
    assert result.stderr == b"bad 1\ncareful\n"


def test_the_run_arguments_are_script_args(run_program: RunProgram) -> None:
    result = run_program("quickjs", "console.log(scriptArgs.slice(1).join('+'))", "a", "b c")

    assert result.stdout == b"a+b c\n"


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("let x = ;", "SyntaxError: unexpected token in expression: ';'\n    at stdin:2:9"),
        ("const o = null;\no.field", "TypeError: cannot read property 'field' of null"),
        (
            "function f() { throw new RangeError('too far') }\nf()",
            "RangeError: too far\n    at f (stdin:2:",
        ),
        ("throw 42", "Uncaught 42"),
        (
            "Promise.reject(new Error('nobody listens'))",
            "Uncaught (in promise) Error: nobody listens",
        ),
        ("await new Promise((_, reject) => reject(new TypeError('later')))", "TypeError: later"),
    ],
    ids=[
        "syntax",
        "null-property",
        "thrown-error",
        "thrown-value",
        "unhandled-rejection",
        "rejected-await",
    ],
)
def test_errors_print_a_message_and_exit_1(
    run_program: RunProgram, program: str, message: str
) -> None:
    result = run_program("quickjs", f"console.log('before');\n{program}")

    assert result.outcome is Outcome.EXIT_NONZERO
    assert result.exit_code == 1
    assert message in result.stderr.decode()
    # A syntax error is found before anything runs.
    assert result.stdout == (b"" if "SyntaxError" in message else b"before\n")


def test_deep_recursion_is_a_range_error_the_script_can_catch(run_program: RunProgram) -> None:
    program = (
        "let depth = 0; function down() { depth++; down() }\n"
        "try { down() } catch (e) { console.log(e instanceof RangeError, depth > 500) }"
    )

    result = run_program("quickjs", program)

    assert result.outcome is Outcome.SUCCESS, result.stderr
    assert result.stdout == b"true true\n"


def test_running_out_of_memory_is_an_error_not_a_trap(run_program: RunProgram) -> None:
    result = run_program("quickjs", "const keep = []; for (;;) keep.push(new Array(1e6).fill(1))")

    # memory_limit when the memory ended within a few pages of the limit (the sandbox's
    # evidence), exit_nonzero otherwise: an exit with a message either way, never a trap.
    assert result.outcome in {Outcome.MEMORY_LIMIT, Outcome.EXIT_NONZERO}
    assert result.exit_code == 1
    assert result.stderr.startswith(b"InternalError: out of memory")
