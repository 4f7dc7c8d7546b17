"""`wasmwiz remote run` with files, as a shell runs it: --file, --archive, --collect and
--output-dir against a real server."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.client.conftest import remote
from tests.fixtures.app import LiveServer, ServerFactory

COPY = Path(__file__).parents[1] / "sandbox" / "fixtures" / "files" / "copy.wasm"


def run(
    server: LiveServer | None, api_key: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    # Without a server: one that is not listening, so a usage error must come first.
    return remote(server, api_key, "run", *args, cwd=cwd, url="http://127.0.0.1:9")


def test_a_file_goes_in_and_its_copy_comes_back_byte_for_byte(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    payload = os.urandom(300_000)
    (tmp_path / "local.bin").write_bytes(payload)
    done = run(
        server,
        api_key,
        str(COPY),
        "--file",
        "in.txt=local.bin",
        "--collect",
        "out/*",
        "--output-dir",
        "results",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"copied 300000 bytes\n"
    assert done.stderr == b"wasmwiz: wrote results/out/in.txt (300000 bytes)\n"
    assert (tmp_path / "results" / "out" / "in.txt").read_bytes() == payload


def test_file_under_its_base_name_and_at_a_nested_path_collect_everything(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_bytes(b"base name\n")
    (tmp_path / "extra.csv").write_bytes(b"a,b\n")
    output = tmp_path / "out dir"
    done = run(
        server,
        api_key,
        str(COPY),
        "--file",
        str(tmp_path / "data" / "in.txt"),
        "--file",
        f"tables/extra.csv={tmp_path / 'extra.csv'}",
        "--collect",
        "**",
        "--output-dir",
        str(output),
    )
    assert done.returncode == 0, done.stderr
    written = sorted(
        path.relative_to(output).as_posix() for path in output.rglob("*") if path.is_file()
    )
    assert written == ["in.txt", "out/in.txt", "tables/extra.csv"]
    assert (output / "out" / "in.txt").read_bytes() == b"base name\n"
    assert (output / "tables" / "extra.csv").read_bytes() == b"a,b\n"
    assert done.stderr.decode().splitlines() == [
        f"wasmwiz: wrote {output / 'in.txt'} (10 bytes)",
        f"wasmwiz: wrote {output / 'out' / 'in.txt'} (10 bytes)",
        f"wasmwiz: wrote {output / 'tables' / 'extra.csv'} (4 bytes)",
    ]


def test_an_archive_and_a_collect_that_matches_nothing(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("in.txt")
        info.size = 8
        archive.addfile(info, io.BytesIO(b"archived"))
    (tmp_path / "root.tar.gz").write_bytes(buffer.getvalue())
    common = ["--archive", "root.tar.gz", "--output-dir", "o"]
    found = run(server, api_key, str(COPY), *common, "--collect", "out/*", cwd=tmp_path)
    none = run(server, api_key, str(COPY), *common, "--collect", "nothing/*", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert (tmp_path / "o" / "out" / "in.txt").read_bytes() == b"archived"
    assert none.returncode == 0, none.stderr
    assert none.stderr == b"wasmwiz: no file matched --collect\n"


def test_a_file_past_the_output_cap_is_named_not_written(
    server_factory: ServerFactory, api_key: str, tmp_path: Path
) -> None:
    server = server_factory(files_max_output_bytes=100)
    (tmp_path / "in.txt").write_bytes(b"x" * 200)
    done = run(
        server,
        api_key,
        str(COPY),
        "--file",
        str(tmp_path / "in.txt"),
        "--collect",
        "out/*",
        "--output-dir",
        str(tmp_path / "o"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        b"wasmwiz: not written: out/in.txt (200 bytes): past the service's cap on collected files\n"
    )
    assert not (tmp_path / "o" / "out").exists()


def test_a_refused_file_path_exits_126(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"")
    done = run(server, api_key, str(COPY), "--file", f"../up={tmp_path / 'x'}")
    assert done.returncode == 126
    assert done.stderr.startswith(b"wasmwiz: invalid_file_path: ")
    assert done.stderr.count(b"\n") == 1


def test_a_missing_local_file_is_a_client_error(api_key: str, tmp_path: Path) -> None:
    done = run(None, api_key, str(COPY), "--file", str(tmp_path / "nope.txt"))
    assert done.returncode == 1
    assert done.stderr.startswith(b"wasmwiz: ")
    assert b"nope.txt" in done.stderr
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--file", "a", "--archive", "b.tar"], b"--file or --archive, not both"),
        (["--collect", "out/*"], b"--collect needs --output-dir"),
        (["--output-dir", "o"], b"--output-dir needs --collect"),
        (["--file", "=x"], b"--file takes SRC or DEST=SRC"),
        (["--file", "in.txt="], b"--file takes SRC or DEST=SRC"),
    ],
)
def test_bad_file_options_are_usage_errors(
    api_key: str, options: list[str], message: bytes
) -> None:
    done = run(None, api_key, str(COPY), *options)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count(b"\n") == 1


def test_a_path_the_client_cannot_send_is_a_usage_error(api_key: str, tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"")
    done = run(None, api_key, str(COPY), "--file", f'say "hi".txt={tmp_path / "x"}')
    assert done.returncode == 2
    assert b"double quote" in done.stderr
    assert b"Traceback" not in done.stderr
