"""The bundled example modules: loadable by name, and each does what it says."""

from __future__ import annotations

import pytest

from wasmwiz.sandbox import Limits, Outcome, RunRequest, Sandbox, example_names, load_example


def test_bundled_examples_are_listed() -> None:
    assert {"hello", "echo", "loop"} <= set(example_names())


@pytest.mark.parametrize(
    ("name", "stdin", "outcome", "stdout"),
    [
        ("hello", b"", Outcome.SUCCESS, b"Hello, WasmWiz!\n"),
        ("echo", b"echo me\n", Outcome.SUCCESS, b"echo me\n"),
        ("loop", b"", Outcome.TIMEOUT, b""),
    ],
)
def test_examples_run(
    sandbox: Sandbox, name: str, stdin: bytes, outcome: Outcome, stdout: bytes
) -> None:
    compiled = sandbox.prepare(load_example(name))

    result = sandbox.run(compiled, RunRequest(stdin=stdin), Limits(timeout_seconds=0.2))

    assert result.outcome is outcome
    assert result.stdout == stdout


@pytest.mark.parametrize("name", ["nope", "../pyproject", "hello.wat", ""])
def test_unknown_example_names_are_refused(name: str) -> None:
    with pytest.raises(KeyError):
        load_example(name)
