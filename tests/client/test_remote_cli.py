"""`wasmwiz remote run` and `remote batch` as a shell would run them: a subprocess, byte
streams and exit codes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

import pytest

from tests.api import wat
from tests.client.conftest import WASMWIZ, remote
from tests.client.programs import echo_then_exit
from tests.fixtures.app import LiveServer, ServerFactory
from wasmwiz_client import Client


def remote_run(
    server: LiveServer | None,
    api_key: str | None,
    *args: str,
    stdin: bytes = b"",
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return remote(server, api_key, "run", *args, stdin=stdin, cwd=cwd)


def test_stdout_stderr_byte_exact_and_exit_code_zero(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    module = tmp_path / "echo.wat"
    module.write_text(echo_then_exit(0, b"to stderr \xff\n"))
    payload = bytes(range(256)) * 64
    stdin_file = tmp_path / "stdin.bin"
    stdin_file.write_bytes(payload)
    result = remote_run(server, api_key, str(module), "--input", str(stdin_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload
    assert result.stderr == b"to stderr \xff\n"


def test_stdin_from_a_pipe_and_the_program_exit_code(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    module = tmp_path / "fail.wat"
    module.write_text(echo_then_exit(42, b""))
    result = remote_run(server, api_key, str(module), "--input", "-", stdin=b"piped\n")
    assert result.returncode == 42
    assert result.stdout == b"piped\n"
    assert result.stderr == b""


def test_piped_stdin_is_sent_without_input_dash_as_wasmwiz_run_does(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    # `echo … | wasmwiz remote run prog` ran the program on empty stdin, while `wasmwiz
    # run` reads the pipe: a shell user gets what the program would have read.
    module = tmp_path / "echo.wat"
    module.write_text(echo_then_exit(0, b""))
    piped = remote_run(server, api_key, str(module), stdin=b"through the pipe\n")
    redirected_from = tmp_path / "in.bin"
    redirected_from.write_bytes(b"from a file\n")
    with redirected_from.open("rb") as redirected, open(os.devnull, "rb") as nothing:
        from_file = _remote_run_with_stdin(server, api_key, str(module), stdin=redirected)
        none = _remote_run_with_stdin(server, api_key, str(module), stdin=nothing)
    assert (piped.returncode, piped.stdout) == (0, b"through the pipe\n"), piped.stderr
    assert (from_file.returncode, from_file.stdout) == (0, b"from a file\n"), from_file.stderr
    assert (none.returncode, none.stdout) == (0, b""), none.stderr


def _remote_run_with_stdin(
    server: LiveServer, api_key: str, *args: str, stdin: BinaryIO
) -> subprocess.CompletedProcess[bytes]:
    """`wasmwiz remote run ARGS < FILE`: stdin a file the shell opened, not a pipe."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WASMWIZ_")}
    env |= {"WASMWIZ_URL": server.url, "WASMWIZ_API_KEY": api_key}
    return subprocess.run(
        [*WASMWIZ, "remote", "run", *args],
        stdin=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_guest_args_after_double_dash_and_env(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    module = tmp_path / "args.wat"
    module.write_text(wat.ARGS_AND_ENV)
    result = remote_run(
        server, api_key, str(module), "--env", "GREETING=hi there", "--", "-n", "--input", "x y"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"args.wat\n-n\n--input\nx y\n-\nGREETING=hi there\n"


@pytest.mark.parametrize(
    ("module", "exit_code", "message"),
    [
        (wat.INFINITE_LOOP, 124, b"wasmwiz: timeout: "),
        (wat.UNREACHABLE, 125, b"wasmwiz: trap: "),
    ],
)
def test_a_run_stopped_by_the_sandbox(
    server: LiveServer, api_key: str, tmp_path: Path, module: str, exit_code: int, message: bytes
) -> None:
    path = tmp_path / "bad.wat"
    path.write_text(module)
    result = remote_run(server, api_key, str(path))
    assert result.returncode == exit_code
    assert result.stderr.startswith(message)
    assert result.stderr.count(b"\n") == 1


def test_fuel_budget_flag(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    path = tmp_path / "loop.wat"
    path.write_text(wat.INFINITE_LOOP)
    result = remote_run(server, api_key, str(path), "--max-fuel", "5000", "--deterministic")
    assert result.returncode == 125
    assert result.stderr.startswith(b"wasmwiz: fuel_exhausted: ")


def test_a_refusal_is_one_line_and_exit_126(server: LiveServer, tmp_path: Path) -> None:
    module = tmp_path / "hello.wat"
    module.write_text(wat.HELLO)
    result = remote_run(server, "ww_wrong", str(module))
    assert result.returncode == 126
    assert result.stdout == b""
    assert result.stderr.startswith(b"wasmwiz: unauthorized: ")
    assert b"(request " in result.stderr
    assert result.stderr.count(b"\n") == 1


def test_a_rejected_module_exits_126(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    module = tmp_path / "lib.wat"
    module.write_text('(module (memory (export "memory") 1))')
    result = remote_run(server, api_key, str(module))
    assert result.returncode == 126
    assert result.stderr.startswith(b"wasmwiz: missing_start: ")


def test_no_url_is_a_client_error_and_touches_nothing(tmp_path: Path) -> None:
    module = tmp_path / "hello.wat"
    module.write_text(wat.HELLO)
    result = remote_run(None, "ww_x", str(module), cwd=tmp_path)
    assert result.returncode == 1
    assert b"WASMWIZ_URL" in result.stderr
    # A client command must not create the server's VAR_DIR or its salt where it runs.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hello.wat"]


def test_a_client_command_imports_nothing_of_the_server() -> None:
    # Each `wasmwiz remote` call is a new process: importing the server (its web framework,
    # runtime and database layer) took it from 0.2 s to 2 s a call.
    probe = (
        "import sys; from wasmwiz.cli.main import main; code = main(['remote', 'modules', 'list']);"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & SERVER))"
    )
    server_only = "{'fastapi', 'starlette', 'sqlalchemy', 'wasmtime', 'uvicorn', 'pydantic'}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("WASMWIZ_")}
    done = subprocess.run(
        [sys.executable, "-c", f"SERVER = {server_only}; {probe}"],
        capture_output=True,
        env={**env, "WASMWIZ_URL": "http://127.0.0.1:9"},
        timeout=60,
        check=True,
    )
    assert done.stdout == b"1 []\n", done.stderr


def test_a_missing_module_file(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    result = remote_run(server, api_key, str(tmp_path / "nope.wasm"))
    assert result.returncode == 1
    assert result.stderr.startswith(b"wasmwiz: ")
    assert b"Traceback" not in result.stderr


def remote_batch(
    server: LiveServer | None, api_key: str, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    # Without a server: one that is not listening, so nothing but the files is at fault.
    return remote(server, api_key, "batch", *args, stdin=stdin, url="http://127.0.0.1:9")


def json_lines(output: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.decode().splitlines()]


def test_batch_prints_a_result_a_line_in_case_order(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    module = tmp_path / "echo.wat"
    module.write_text(echo_then_exit(0, b""))
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"stdin": "first\\n"}\n\n{"stdin_base64": "/w=="}\n')

    text = remote_batch(server, api_key, str(module), str(cases))
    exact = remote_batch(server, api_key, str(module), "-", "--base64", stdin=cases.read_bytes())

    assert text.returncode == 0, text.stderr
    results = json_lines(text.stdout)
    assert [(r["case"], r["status"], r["output"]) for r in results] == [
        (0, "success", "first\n"),
        (1, "success", "\ufffd"),
    ]
    assert all(r["encoding"] == "utf-8" and r["exit_code"] == 0 for r in results)
    assert exact.returncode == 0, exact.stderr
    outputs = [base64.b64decode(str(r["output"])) for r in json_lines(exact.stdout)]
    assert outputs == [b"first\n", b"\xff"]


def test_batch_exits_3_when_a_case_did_not_succeed(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    module = tmp_path / "exit.wat"
    module.write_text(echo_then_exit(4, b""))
    cases = tmp_path / "cases.jsonl"
    cases.write_text("{}\n{}\n")
    done = remote_batch(server, api_key, str(module), str(cases))
    assert done.returncode == 3
    assert [r["status"] for r in json_lines(done.stdout)] == ["exit_nonzero"] * 2
    assert done.stderr == b""


def test_batch_of_a_stored_module_and_a_refused_case(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    with Client(server.url, api_key) as client:
        client.upload_module(wat.ECHO.encode(), name="echo")
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"stdin": "a"}\n')
    by_name = remote_batch(server, api_key, "--module", "echo", str(cases))
    assert by_name.returncode == 0, by_name.stderr
    assert [r["output"] for r in json_lines(by_name.stdout)] == ["a"]

    cases.write_text('{"stdin": "a"}\n\n{"stdin": "a", "stdin_base64": "YQ=="}\n')
    bad = remote_batch(server, api_key, "echo", str(cases))
    assert bad.returncode == 126
    assert bad.stderr.startswith(b"wasmwiz: invalid_cases: ")
    assert b"(case 1, line 3)" in bad.stderr
    assert bad.stdout == b""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"stdin": "a"}\n{"stdin": \n', b"line 2: not JSON"),
        (b'{"stdin": "a"}\n["a"]\n', b"line 2: a case is a JSON object"),
        (b"\xff\n", b"not UTF-8"),
    ],
    ids=["not-json", "not-an-object", "not-utf-8"],
)
def test_a_bad_cases_file_is_a_client_error_and_sends_nothing(
    tmp_path: Path, content: bytes, message: bytes
) -> None:
    module = tmp_path / "hello.wat"
    module.write_text(wat.HELLO)
    cases = tmp_path / "cases.jsonl"
    cases.write_bytes(content)
    # No server listens on the URL: the file is refused before anything is sent.
    done = remote_batch(None, "ww_x", str(module), str(cases))
    assert done.returncode == 1
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_batch_takes_no_program_arguments(tmp_path: Path) -> None:
    done = remote_batch(None, "ww_x", "mod.wasm", "cases.jsonl", "--", "-n")
    assert done.returncode == 2
    assert b"each case's arguments" in done.stderr


def test_a_public_runtime_runs_by_name_from_the_cli(
    server_factory: ServerFactory, api_key: str
) -> None:
    server = server_factory(install_bundled_runtimes=True)
    lua = remote_run(server, api_key, "lua", stdin=b'print("from the cli")')
    js = remote_run(server, api_key, "quickjs@0.17.0", "--input", "-", stdin=b"console.log(6 * 7)")

    assert (lua.returncode, lua.stdout) == (0, b"from the cli\n"), lua.stderr
    assert (js.returncode, js.stdout) == (0, b"42\n"), js.stderr
