"""The C program in docs/writing-wasi-programs.md, built as the guide says, runs as it says.

The source, the build command and the expected output are read from the guide itself, so
the guide cannot drift from what the toolchain and the service do.
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
from wasmwiz.client import Client

GUIDE = ROOT / "docs" / "writing-wasi-programs.md"


def section(name: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"\n## {name}")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def remote_run_line(c_section: str) -> str:
    return next(
        line
        for block in fenced(c_section, "sh")
        for line in block.splitlines()
        if "remote run" in line
    )


@pytest.fixture(scope="session")
def hello_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session: the first zig build compiles WASI libc (tens of seconds)."""
    c_section = section("C (and C++)")
    source = fenced(c_section, "c")[0]
    build = next(
        line
        for block in fenced(c_section, "sh")
        for line in block.splitlines()
        if "ziglang cc" in line
    )
    workdir = tmp_path_factory.mktemp("c-guide")
    (workdir / "hello.c").write_text(source)
    argv = shlex.split(build)
    assert argv[0] == "python"
    result = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return workdir / "hello.wasm"


def test_the_c_program_prints_what_the_guide_says(
    hello_wasm: Path, live_server: LiveServer, migrated_database_url: str
) -> None:
    c_section = section("C (and C++)")
    run_line = remote_run_line(c_section)
    # printf 'one\ntwo\n' | wasmwiz remote run hello.wasm --input - -- Ada
    stdin_spec, command = run_line.split(" | ")
    stdin = shlex.split(stdin_spec)[1].encode().decode("unicode_escape").encode()
    guest_args = shlex.split(command.split(" -- ", 1)[1])
    expected = fenced(c_section, "text")[0]

    account = run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
    with Client(live_server.url, account.api_key) as client:
        result = client.execute(hello_wasm, input=stdin, args=guest_args)
    assert result.status == "success", result.error
    assert result.text == expected


def test_the_guide_s_remote_run_command_works_too(
    hello_wasm: Path, live_server: LiveServer, migrated_database_url: str
) -> None:
    c_section = section("C (and C++)")
    run_line = remote_run_line(c_section)
    account = run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
    wasmwiz = Path(sys.executable).with_name("wasmwiz")
    env = {
        "PATH": f"{wasmwiz.parent}:/usr/bin:/bin",
        "WASMWIZ_URL": live_server.url,
        "WASMWIZ_API_KEY": account.api_key,
    }
    result = subprocess.run(
        ["sh", "-c", run_line],
        cwd=hello_wasm.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == fenced(c_section, "text")[0]
