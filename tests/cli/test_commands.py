"""The `wasmwiz` command against a real migrated database and the real sandbox."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api import wat
from tests.cli.conftest import KEY
from wasmwiz.cli.main import main


def test_users_and_keys_lifecycle(environment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "create", "Ada@Example.com", "--tier", "basic"]) == 0
    assert "created user ada@example.com" in capsys.readouterr().out

    assert main(["users", "create", "ada@example.com"]) == 1
    assert "exists already" in capsys.readouterr().err

    assert main(["keys", "create", "ada@example.com", "--name", "ci"]) == 0
    created = capsys.readouterr().out
    keys = KEY.findall(created)
    assert len(keys) == 1
    key_id = re.search(r"created key ([0-9a-f-]{36})", created)
    assert key_id is not None

    assert main(["keys", "list", "ada@example.com"]) == 0
    listing = capsys.readouterr().out
    assert key_id.group(1) in listing
    assert "active" in listing
    assert keys[0] not in listing  # the key itself is shown once, at creation

    assert main(["keys", "revoke", key_id.group(1)]) == 0
    capsys.readouterr()
    assert main(["keys", "list", "ada@example.com"]) == 0
    assert "revoked" in capsys.readouterr().out

    assert main(["keys", "revoke", "not-a-uuid"]) == 1
    assert main(["keys", "create", "nobody@example.com"]) == 1


def test_demo_creates_one_key_once(environment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--url", "http://127.0.0.1:9999"]) == 0
    first = capsys.readouterr().out
    assert len(KEY.findall(first.replace("    ", ""))) == 1
    assert "curl -s -H 'Authorization: Bearer ww_" in first
    assert "http://127.0.0.1:9999/api/v1/execute" in first
    assert main(["demo"]) == 0
    assert "ww_" not in capsys.readouterr().out.replace("keys create", "")


def test_db_upgrade_is_idempotent(environment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert "upgraded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("module", "guest_args", "stdin", "exit_code", "stdout"),
    [
        (wat.HELLO, [], b"", 0, b"Hello, WasmWiz!\n"),
        (wat.ECHO, [], b"piped\x00bytes", 0, b"piped\x00bytes"),
        (wat.EXIT_3, [], b"", 3, b""),
        (wat.INFINITE_LOOP, [], b"", 124, b""),
        (wat.UNREACHABLE, [], b"", 125, b""),
        (wat.ARGS_AND_ENV, ["--flag", "value"], b"", 0, b"prog.wat\n--flag\nvalue\n-\n"),
    ],
)
def test_run_locally(
    environment: Path,
    capfdbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    guest_args: list[str],
    stdin: bytes,
    exit_code: int,
    stdout: bytes,
) -> None:
    monkeypatch.setenv("EXECUTION_TIMEOUT", "0.5")
    program = environment / "prog.wat"
    program.write_text(module)
    argv = ["run", str(program)]
    if stdin:
        (environment / "in.bin").write_bytes(stdin)
        argv += ["--input", str(environment / "in.bin")]
    assert main([*argv, "--", *guest_args]) == exit_code
    captured = capfdbinary.readouterr()
    assert captured.out == stdout
    if exit_code >= 124:
        assert b"wasmwiz: " in captured.err


def test_run_refuses_a_bad_module(environment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    program = environment / "bad.wat"
    program.write_text(wat.UNKNOWN_IMPORT)
    assert main(["run", str(program)]) == 1
    assert "unsupported_import" in capsys.readouterr().err


def test_invalid_configuration_names_the_variable(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXECUTION_TIMEOUT", "-1")
    assert main(["db", "upgrade"]) == 2
    assert "EXECUTION_TIMEOUT" in capsys.readouterr().err


def test_production_refuses_to_start_without_a_real_salt(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("API_SALT", "short")
    assert main(["db", "upgrade"]) == 2
    assert "API_SALT" in capsys.readouterr().err


def test_the_admin_commands_do_not_load_the_web_app() -> None:
    # Every `wasmwiz` command is a new process: loading FastAPI and every route cost each
    # one about a second of CPU. Only `serve` and `openapi` need the app, and import it then.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom wasmwiz.cli.main import build_parser\nbuild_parser()\n"
            "print(' '.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert "wasmwiz.cli.admin" in loaded
    assert {"wasmwiz.app", "fastapi", "wasmwiz.api", "wasmwiz.web"} & set(loaded) == set()
