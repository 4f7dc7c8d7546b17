"""The C and Zig programs in docs/writing-wasi-programs.md, built as the guide says, run as
it says.

The source, the build commands and the expected output are read from the guide itself, so
the guide cannot drift from what the toolchain and the service do. The commands are run as
written, with the guide's `.venv/bin/` standing for this test run's virtualenv (where the
pinned ziglang is installed with the development dependencies).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples.conftest import ROOT
from tests.fixtures.app import LiveServer, create_account
from tests.fixtures.database import run_outside_loop
from wasmwiz_client import Client

GUIDE = ROOT / "docs" / "writing-wasi-programs.md"
BIN = Path(sys.executable).parent
SECTIONS = {"c": ("C (and C++)", "hello.c"), "zig": ("Zig", "hello.zig")}


def section(name: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"\n## {name}")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def commands(text: str) -> list[str]:
    return [line for block in fenced(text, "sh") for line in block.splitlines() if line.strip()]


def as_here(command: str) -> str:
    """The guide's command with `.venv/bin/` meaning this run's virtualenv."""
    return command.replace(".venv/bin/", f"{BIN}/")


def remote_run_line(text: str) -> str:
    return next(line for line in commands(text) if "remote run" in line)


@pytest.fixture(scope="session", params=sorted(SECTIONS))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session: the first build compiles WASI libc (tens of seconds)."""
    name, filename = SECTIONS[request.param]
    text = section(name)
    workdir = tmp_path_factory.mktemp(f"{request.param}-guide")
    # The guide's commands run in a clone of WasmWiz: the lock they install by is here too.
    (workdir / "requirements").mkdir()
    (workdir / "requirements/dev.txt").write_text((ROOT / "requirements/dev.txt").read_text())
    (workdir / filename).write_text(fenced(text, request.param)[0])
    builds = [line for line in commands(text) if "remote run" not in line]
    assert builds, f"no build command in the {name} section"
    for command in builds:
        assert command.startswith(".venv/bin/"), f"not runnable as pasted on Debian: {command}"
        result = subprocess.run(
            ["bash", "-c", as_here(command)],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"{command}\n{result.stderr}"
    return workdir / "hello.wasm"


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first build compiles WASI libc: minutes on a busy machine
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_program_prints_what_the_guide_says(
    built: Path, live_server: LiveServer, migrated_database_url: str
) -> None:
    text = section(SECTIONS[built.parent.name.split("-guide")[0]][0])
    run_line = remote_run_line(text)
    # printf 'one\ntwo\n' | .venv/bin/wasmwiz remote run hello.wasm --input - -- Ada
    stdin_spec, command = run_line.split(" | ")
    stdin = shlex.split(stdin_spec)[1].encode().decode("unicode_escape").encode()
    guest_args = shlex.split(command.split(" -- ", 1)[1])
    expected = fenced(text, "text")[0]

    account = run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
    with Client(live_server.url, account.api_key) as client:
        result = client.execute(built, input=stdin, args=guest_args)
    assert result.status == "success", result.error
    assert result.text == expected


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first build compiles WASI libc: minutes on a busy machine
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_guide_s_remote_run_command_works_as_pasted(
    built: Path, live_server: LiveServer, migrated_database_url: str
) -> None:
    text = section(SECTIONS[built.parent.name.split("-guide")[0]][0])
    run_line = remote_run_line(text)
    assert run_line.split(" | ")[1].startswith(".venv/bin/wasmwiz ")
    account = run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
    env = {
        "PATH": "/usr/bin:/bin",
        "WASMWIZ_URL": live_server.url,
        "WASMWIZ_API_KEY": account.api_key,
    }
    result = subprocess.run(
        ["sh", "-c", as_here(run_line)],
        cwd=built.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == fenced(text, "text")[0]
