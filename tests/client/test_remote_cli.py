"""`wasmwiz remote run` as a shell would run it: a subprocess, byte streams and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api import wat
from tests.client.programs import echo_then_exit
from tests.fixtures.app import LiveServer

WASMWIZ = [sys.executable, "-m", "wasmwiz.cli.main"]


def remote_run(
    server: LiveServer | None,
    api_key: str | None,
    *args: str,
    stdin: bytes = b"",
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WASMWIZ_")}
    if server is not None:
        env["WASMWIZ_URL"] = server.url
    if api_key is not None:
        env["WASMWIZ_API_KEY"] = api_key
    return subprocess.run(
        [*WASMWIZ, "remote", "run", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


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


def test_a_missing_module_file(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    result = remote_run(server, api_key, str(tmp_path / "nope.wasm"))
    assert result.returncode == 1
    assert result.stderr.startswith(b"wasmwiz: ")
    assert b"Traceback" not in result.stderr
