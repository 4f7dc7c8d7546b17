"""`wasmwiz remote modules` and runs by reference, as a shell runs them, on both databases."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api import wat
from tests.client.conftest import remote
from tests.fixtures.app import LiveServer
from tests.fixtures.database import DATABASES, empty_database_url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database_url(request.param, tmp_path) as url:
        yield url


def ok(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    return done.stdout.decode()


def refused(done: subprocess.CompletedProcess[bytes], code: str) -> None:
    assert done.returncode == 126, done.stderr
    assert done.stderr.startswith(f"wasmwiz: {code}: ".encode()), done.stderr
    assert done.stderr.count(b"\n") == 1


def test_push_list_tag_run_and_remove(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    echo, hello = tmp_path / "echo.wat", tmp_path / "hello.wat"
    echo.write_text(wat.ECHO)
    hello.write_text(wat.HELLO)

    echo_id = ok(remote(server, api_key, "modules", "push", str(echo), "--name", "grader"))
    hello_id = ok(remote(server, api_key, "modules", "push", str(hello)))
    assert echo_id.startswith("sha256:")
    assert echo_id.endswith("\n")
    echo_id, hello_id = echo_id.strip(), hello_id.strip()
    assert ok(remote(server, api_key, "modules", "push", str(echo))) == f"{echo_id}\n"

    lines = [
        line.split("\t") for line in ok(remote(server, api_key, "modules", "list")).splitlines()
    ]
    assert [(line[0], line[1], line[3]) for line in lines] == [
        (hello_id, str(len(wat.HELLO.encode())), "-"),
        (echo_id, str(len(wat.ECHO.encode())), "grader"),
    ]
    assert all(line[2].endswith("Z") for line in lines)

    # By name, by id as the positional, and by --module: the same program.
    for target in (["grader"], [echo_id], ["--module", "grader"], ["--module", echo_id]):
        done = remote(server, api_key, "run", *target, "--input", "-", stdin=b"by reference\n")
        assert ok(done) == "by reference\n"

    assert ok(remote(server, api_key, "modules", "tag", "latest", hello_id)) == ""
    assert ok(remote(server, api_key, "run", "latest")) == "Hello, WasmWiz!\n"
    assert ok(remote(server, api_key, "modules", "untag", "latest")) == ""
    refused(remote(server, api_key, "run", "latest"), "module_not_found")

    assert ok(remote(server, api_key, "modules", "rm", "grader")) == ""
    refused(remote(server, api_key, "modules", "rm", "grader"), "module_not_found")
    refused(remote(server, api_key, "run", echo_id), "module_not_found")
    listed = ok(remote(server, api_key, "modules", "list"))
    assert listed == f"{hello_id}\t{len(wat.HELLO.encode())}\t{lines[0][2]}\t-\n"


def test_an_existing_file_wins_over_a_name(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    stored = tmp_path / "stored.wat"
    stored.write_text(wat.printing("the stored one\n"))
    ok(remote(server, api_key, "modules", "push", str(stored), "--name", "grader"))
    (tmp_path / "grader").write_text(wat.printing("the file\n"))

    here = remote(server, api_key, "run", "grader", cwd=tmp_path)
    elsewhere = remote(server, api_key, "run", "grader")
    forced = remote(server, api_key, "run", "--module", "grader", cwd=tmp_path)

    assert ok(here) == "the file\n"
    assert ok(elsewhere) == ok(forced) == "the stored one\n"


def test_a_refused_push_is_one_line(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    module = tmp_path / "hello.wat"
    module.write_text(wat.HELLO)
    refused(
        remote(server, api_key, "modules", "push", str(module), "--name", "Bad Name"),
        "invalid_module_name",
    )
    refused(
        remote(server, api_key, "modules", "tag", "x", "sha256:" + "0" * 64), "module_not_found"
    )
    assert ok(remote(server, api_key, "modules", "list")) == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "x.wasm", "--module", "y"], b"not both"),
        (["run"], b"no module"),
        (["run", "x.wasm", "--env", "NOEQUALS"], b"--env takes NAME=VALUE"),
    ],
    ids=["both", "neither", "bad-env"],
)
def test_usage_errors_exit_2_before_reading_anything(
    tmp_path: Path, args: list[str], message: bytes
) -> None:
    done = remote(None, None, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_what_is_not_a_reference_is_a_file(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    for target in ("missing.wasm", "missing.wat", "./missing", "Missing"):
        done = remote(server, api_key, "run", target, cwd=tmp_path)
        assert done.returncode == 1, target
        assert b"No such file" in done.stderr
    refused(remote(server, api_key, "run", "missing", cwd=tmp_path), "module_not_found")
    refused(remote(server, api_key, "run", "sha256:abc"), "invalid_module_reference")
    # A public runtime's name@version is a reference too (unknown here, whatever the code).
    unknown = remote(server, api_key, "run", "nothing@1.0", cwd=tmp_path)
    assert unknown.returncode == 126
    assert b"No such file" not in unknown.stderr
