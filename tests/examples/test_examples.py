"""Every example under examples/ runs against a live server, and its output is checked.

Each gets the URL and a real key in its environment, uploads the bundled echo module with
some stdin, and must print the run's result; with a wrong key it must report the refusal
by its code and exit 1. With `--name NAME` each stores the module under that name and runs
it by reference, and must print the same. With `--file PATH --collect PATTERN` each sends a
file to a program that copies it and must print the copy it collects back. A missing
toolchain skips its example, and CI turns such a skip into a failure (the `toolchain`
marker).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.examples.conftest import EXAMPLES, ROOT, need
from tests.fixtures.app import LiveServer, create_account
from tests.fixtures.database import run_outside_loop

ECHO = ROOT / "src" / "wasmwiz" / "examples" / "echo.wat"
# Copies in.txt to out/in.txt and prints how many bytes it copied.
COPY = ROOT / "tests" / "sandbox" / "fixtures" / "files" / "copy.wasm"
STDIN = "Ada Lovelace\nnote: \u00e9t\u00e9 \u2603\n"
EXAMPLE_NAMES = ["curl", "python-client", "python-httpx", "node", "go", "rust"]
# Prints its argv[0]: the file name when uploaded, the reference when run by one.
ARGV0 = """(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $args (i32.const 16) (i32.const 1024)))
    (i32.store (i32.const 8) (i32.const 1024))
    (i32.store (i32.const 12) (i32.sub (i32.load (i32.const 4)) (i32.const 1)))
    (drop (call $write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 512)))))
"""


@pytest.fixture
def command(request: pytest.FixtureRequest) -> list[str]:
    name: str = request.param
    if name == "curl":
        need("curl")
        return ["sh", str(EXAMPLES / "curl" / "execute.sh")]
    if name == "python-client":
        return [sys.executable, str(EXAMPLES / "python" / "execute_client.py")]
    if name == "python-httpx":
        return [sys.executable, str(EXAMPLES / "python" / "execute_httpx.py")]
    if name == "node":
        return [need("node"), str(EXAMPLES / "node" / "execute.mjs")]
    builder: Callable[[], list[str]] = request.getfixturevalue(f"{name}_example")
    return builder()


def run_example(
    command: list[str],
    server: LiveServer,
    key: str,
    module: str = str(ECHO),
    options: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("WASMWIZ_")}
    env |= {"WASMWIZ_URL": server.url, "WASMWIZ_API_KEY": key}
    return subprocess.run(
        [*command, *options, module],
        input=STDIN,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def new_key(database_url: str) -> str:
    return run_outside_loop(lambda: asyncio.run(create_account(database_url))).api_key


@pytest.mark.toolchain
@pytest.mark.parametrize("command", EXAMPLE_NAMES, indirect=True)
def test_example_prints_the_result(
    command: list[str], live_server: LiveServer, migrated_database_url: str
) -> None:
    result = run_example(command, live_server, new_key(migrated_database_url))
    assert result.returncode == 0, result.stderr
    assert_success(command, result, STDIN)


def assert_success(
    command: list[str], result: subprocess.CompletedProcess[str], output: str
) -> None:
    if command[-1].endswith("execute.sh"):
        body = json.loads(result.stdout)
        assert body["status"] == "success"
        assert body["output"] == output
        assert body["exit_code"] == 0
    else:
        assert result.stdout == "status: success, exit code: 0\n" + output


@pytest.mark.toolchain
@pytest.mark.parametrize("command", EXAMPLE_NAMES, indirect=True)
def test_example_reports_a_refusal_by_its_code(command: list[str], live_server: LiveServer) -> None:
    result = run_example(command, live_server, "ww_not-a-real-key")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "unauthorized" in result.stderr
    assert "Traceback" not in result.stderr
    if not command[-1].endswith("execute.sh"):
        assert "WasmWiz refused the request: unauthorized (HTTP 401)" in result.stderr


@pytest.mark.toolchain
@pytest.mark.parametrize("command", EXAMPLE_NAMES, indirect=True)
def test_example_reports_a_run_that_trapped_as_a_result(
    command: list[str], live_server: LiveServer, migrated_database_url: str, tmp_path: Path
) -> None:
    module = tmp_path / "trap.wat"
    module.write_text('(module (memory (export "memory") 1) (func (export "_start") unreachable))')
    result = run_example(command, live_server, new_key(migrated_database_url), str(module))
    assert result.returncode == 0, result.stderr
    if command[-1].endswith("execute.sh"):
        assert json.loads(result.stdout)["status"] == "trap"
    else:
        # Python spells the missing exit code None; the others print JSON's null.
        none = "None" if "python" in command[-1] else "null"
        assert result.stdout == f"status: trap, exit code: {none}\n"


@pytest.mark.toolchain
@pytest.mark.parametrize("command", EXAMPLE_NAMES, indirect=True)
def test_example_stores_the_module_and_runs_it_by_name(
    command: list[str], live_server: LiveServer, migrated_database_url: str
) -> None:
    key = new_key(migrated_database_url)
    module_id = "sha256:" + hashlib.sha256(ECHO.read_bytes()).hexdigest()
    # The second upload of the same bytes is answered 200, not 201: both are a success.
    for _ in range(2):
        result = run_example(command, live_server, key, options=["--name", "echo"])
        assert result.returncode == 0, result.stderr
        assert_success(command, result, STDIN)
        if command[-1].endswith("execute.sh"):
            stored = json.loads(result.stderr)
            assert (stored["id"], stored["names"]) == (module_id, ["echo"])
        else:
            assert result.stderr == f"stored {module_id} as echo\n"


@pytest.mark.toolchain
@pytest.mark.parametrize("command", EXAMPLE_NAMES, indirect=True)
def test_example_runs_by_reference_not_by_upload(
    command: list[str], live_server: LiveServer, migrated_database_url: str, tmp_path: Path
) -> None:
    module = tmp_path / "argv0.wat"
    module.write_text(ARGV0)
    options = ["--name", "whoami"]
    result = run_example(command, live_server, new_key(migrated_database_url), str(module), options)
    assert result.returncode == 0, result.stderr
    # Uploaded, the run's argv[0] would be "argv0.wat".
    assert_success(command, result, "whoami")


@pytest.mark.toolchain
@pytest.mark.parametrize("command", EXAMPLE_NAMES, indirect=True)
def test_example_reports_a_refused_upload_by_its_code(
    command: list[str], live_server: LiveServer
) -> None:
    options = ["--name", "echo"]
    result = run_example(command, live_server, "ww_not-a-real-key", options=options)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert "unauthorized" in result.stderr
    assert "Traceback" not in result.stderr
    if not command[-1].endswith("execute.sh"):
        assert "WasmWiz refused the request: unauthorized (HTTP 401)" in result.stderr


@pytest.mark.toolchain
@pytest.mark.parametrize("command", EXAMPLE_NAMES, indirect=True)
def test_example_sends_a_file_and_collects_what_the_run_wrote(
    command: list[str], live_server: LiveServer, migrated_database_url: str, tmp_path: Path
) -> None:
    local = tmp_path / "in.txt"
    local.write_text(STDIN, encoding="utf-8")
    size = len(STDIN.encode("utf-8"))
    options = ["--file", str(local), "--collect", "out/*"]
    key = new_key(migrated_database_url)
    result = run_example(command, live_server, key, str(COPY), options)
    assert result.returncode == 0, result.stderr
    if command[-1].endswith("execute.sh"):
        body = json.loads(result.stdout)
        assert (body["status"], body["output"]) == ("success", f"copied {size} bytes\n")
        (item,) = body["files"]
        assert (item["path"], item["size"]) == ("out/in.txt", size)
        assert base64.b64decode(item["content"]).decode("utf-8") == STDIN
    else:
        assert_success(
            command, result, f"copied {size} bytes\nfile: out/in.txt ({size} bytes)\n" + STDIN
        )
