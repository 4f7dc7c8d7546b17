"""Files through the client against a real server: input files in every form, an archive,
collected files back byte for byte, each refusal's exception, and write_files, which never
writes outside its directory."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.client.conftest import new_account
from tests.fixtures.app import LiveServer, ServerFactory
from wasmwiz_client import (
    AsyncClient,
    Client,
    CollectedFile,
    ExecutionResult,
    FilesTooLargeError,
    InvalidFilesError,
    InvalidRequestError,
    Outcome,
    PayloadTooLargeError,
    ProblemError,
    UnexpectedResponse,
    UnsafePathError,
    WasmWizClientError,
)
from wasmwiz_client._protocol import error_for

FIXTURES = Path(__file__).parents[1] / "sandbox" / "fixtures" / "files"
COPY = FIXTURES / "copy.wasm"  # copies in.txt to out/in.txt and prints how many bytes


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def test_a_mebibyte_round_trips_and_is_written_under_a_directory(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    payload = os.urandom(1024 * 1024)
    with Client(server.url, api_key) as client:
        result = client.execute(COPY, files={"in.txt": payload}, collect=["out/*"])
    assert result.status is Outcome.SUCCESS, result.stderr
    assert result.stdout == b"copied 1048576 bytes\n"
    assert result.files == (
        CollectedFile("out/in.txt", len(payload), hashlib.sha256(payload).hexdigest(), payload),
    )
    assert result.files_truncated is False

    written = result.write_files(tmp_path / "results")
    assert written == [tmp_path / "results" / "out" / "in.txt"]
    assert written[0].read_bytes() == payload
    # Again over what is there: the file is replaced, not appended to.
    assert result.write_files(tmp_path / "results") == written
    assert written[0].read_bytes() == payload


def test_files_as_paths_file_objects_and_pairs_with_nested_and_non_ascii_paths(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    local = tmp_path / "local name.bin"
    local.write_bytes(b"\x00from a path\xff")
    with Client(server.url, api_key) as client, open(local, "rb") as handle:
        by_mapping = client.execute(
            COPY,
            files={"in.txt": local, "données/été.txt": handle, "data/deep/x": b""},
            collect=["**"],
        )
        by_pairs = client.execute(COPY, files=[("in.txt", b"pairs\n")], collect=["out/*"])
    assert by_mapping.ok, by_mapping.stderr
    assert {file.path: file.content for file in by_mapping.files} == {
        "data/deep/x": b"",
        "données/été.txt": b"\x00from a path\xff",
        "in.txt": b"\x00from a path\xff",
        "out/in.txt": b"\x00from a path\xff",
    }
    assert [file.path for file in by_mapping.files] == sorted(f.path for f in by_mapping.files)
    assert [(file.path, file.content) for file in by_pairs.files] == [("out/in.txt", b"pairs\n")]


def test_an_archive_as_bytes_or_a_path(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    zipped = tmp_path / "input.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("in.txt", b"zipped\n")
    with Client(server.url, api_key) as client:
        from_bytes = client.execute(
            COPY, archive=tar_gz({"in.txt": b"tarred\n"}), collect=["out/in.txt"]
        )
        from_path = client.execute(COPY, archive=zipped, collect=["out/in.txt"])
    assert [file.content for file in from_bytes.files] == [b"tarred\n"]
    assert [file.content for file in from_path.files] == [b"zipped\n"]


def test_files_past_the_output_cap_have_no_content_and_are_not_written(
    server_factory: ServerFactory, api_key: str, tmp_path: Path
) -> None:
    server = server_factory(files_max_output_bytes=1000)
    with Client(server.url, api_key) as client:
        result = client.execute(
            COPY, files={"a.txt": b"a" * 600, "in.txt": b"b" * 600}, collect=["**"]
        )
    assert result.files_truncated is True
    by_path = {file.path: file for file in result.files}
    assert by_path["a.txt"].content == b"a" * 600
    assert by_path["in.txt"].content is None
    assert by_path["in.txt"].size == 600
    target = tmp_path / "collected"
    assert result.write_files(target) == [target / "a.txt"]
    assert sorted(path.name for path in target.iterdir()) == ["a.txt"]


def test_a_run_without_collect_has_no_files(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        result = client.execute(COPY, files={"in.txt": b"x"})
    assert result.ok
    assert (result.files, result.files_truncated) == ((), False)


def test_each_refusal_raises_its_exception(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory(files_max_input_bytes=1024, files_max_input_entries=5)
    key = new_account(migrated_database_url).api_key
    cases: list[tuple[dict[str, object], type[ProblemError], str]] = [
        ({"files": {"../escape": b""}}, InvalidFilesError, "invalid_file_path"),
        ({"files": [("a", b"1"), ("a", b"2")]}, InvalidFilesError, "duplicate_file_path"),
        ({"files": {f"f{i}": b"" for i in range(6)}}, InvalidFilesError, "too_many_files"),
        ({"archive": b"not an archive" * 10}, InvalidFilesError, "invalid_archive"),
        ({"collect": ["/etc/*"]}, InvalidFilesError, "invalid_collect"),
        ({"files": {"big": bytes(1025)}}, FilesTooLargeError, "files_too_large"),
    ]
    with Client(server.url, key) as client:
        for options, cls, code in cases:
            with pytest.raises(cls) as info:
                client.execute(COPY, **options)  # type: ignore[arg-type]
            assert info.value.code == code
            assert info.value.detail
    assert issubclass(InvalidFilesError, InvalidRequestError)
    assert issubclass(FilesTooLargeError, PayloadTooLargeError)


FILE_CODES = {
    "invalid_file_path": (400, InvalidFilesError),
    "duplicate_file_path": (400, InvalidFilesError),
    "file_type_not_allowed": (400, InvalidFilesError),
    "too_many_files": (400, InvalidFilesError),
    "invalid_archive": (400, InvalidFilesError),
    "files_and_archive": (400, InvalidFilesError),
    "invalid_collect": (400, InvalidFilesError),
    "files_too_large": (413, FilesTooLargeError),
}


@pytest.mark.parametrize("code", sorted(FILE_CODES))
def test_every_files_code_has_its_class(code: str) -> None:
    status, cls = FILE_CODES[code]
    response = httpx.Response(
        status,
        json={"status": status, "code": code, "detail": "d"},
        headers={"content-type": "application/problem+json"},
        request=httpx.Request("POST", "http://x/api/v1/execute"),
    )
    assert type(error_for(response)) is cls


class Unreachable(httpx.BaseTransport):
    """A transport that fails the test if the client sends anything."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError("a request was sent")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"files": {"a": b""}, "archive": b""}, ValueError, "not both"),
        ({"files": {"a": "text"}}, TypeError, "text.encode()"),
        ({"files": {"a": 3}}, TypeError, "not int"),
        ({"files": {Path("a"): b""}}, TypeError, "is a str"),
        ({"files": "in.txt"}, TypeError, "mapping"),
        ({"files": {'say "hi".txt': b""}}, ValueError, "archive"),
        ({"files": {"line\nbreak": b""}}, ValueError, "control character"),
        ({"collect": "out/*"}, TypeError, "collect must be a sequence"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with (
        Client("http://wasmwiz.invalid", "ww_x", transport=Unreachable()) as client,
        pytest.raises(error, match=re.escape(message)),
    ):
        client.execute(b"\0asm", **options)  # type: ignore[arg-type]


def test_a_missing_local_file_is_an_os_error_before_anything_is_sent(tmp_path: Path) -> None:
    with Client("http://wasmwiz.invalid", "ww_x", transport=Unreachable()) as client:
        with pytest.raises(FileNotFoundError):
            client.execute(b"\0asm", files={"in.txt": tmp_path / "nope"})
        with pytest.raises(FileNotFoundError):
            client.execute(b"\0asm", archive=tmp_path / "nope.tar")


def result_with(*files: CollectedFile) -> ExecutionResult:
    return ExecutionResult(
        execution_id=uuid.uuid4(),
        status=Outcome.SUCCESS,
        stdout=b"",
        stderr=b"",
        exit_code=0,
        error=None,
        duration_ms=1.0,
        fuel_consumed=1,
        memory_peak_bytes=65536,
        stdout_truncated=False,
        stderr_truncated=False,
        request_id=None,
        rate_limit=None,
        files=files,
    )


def collected(path: str, content: bytes = b"x") -> CollectedFile:
    return CollectedFile(path, len(content), hashlib.sha256(content).hexdigest(), content)


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../up", "a/../../up", "a/./b", "a//b", "a/", "", "a\\..\\b", "C:x", "x\0"],
)
def test_write_files_refuses_a_path_that_could_leave_the_directory(
    tmp_path: Path, path: str
) -> None:
    target = tmp_path / "out"
    result = result_with(collected("fine.txt"), collected(path))
    with pytest.raises(UnsafePathError) as info:
        result.write_files(target)
    assert isinstance(info.value, WasmWizClientError)
    assert isinstance(info.value, ValueError)
    # Every path is checked first: not even the good one was written.
    assert not target.exists()
    assert sorted(tmp_path.iterdir()) == []


def test_write_files_follows_no_link_already_in_the_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "out").symlink_to(outside, target_is_directory=True)
    (target / "file").symlink_to(outside / "planted")

    with pytest.raises(UnsafePathError, match="symbolic link"):
        result_with(collected("out/in.txt")).write_files(target)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        result_with(collected("file")).write_files(target)
    assert list(outside.iterdir()) == []


def test_write_files_into_an_existing_tree(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_bytes(b"kept")
    written = result_with(collected("out/new.txt", b"new"), collected("top", b"t")).write_files(
        tmp_path
    )
    assert written == [tmp_path / "out" / "new.txt", tmp_path / "top"]
    assert (tmp_path / "out" / "old.txt").read_bytes() == b"kept"
    assert (tmp_path / "out" / "new.txt").read_bytes() == b"new"
    (tmp_path / "blocker").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        result_with(collected("blocker/inside")).write_files(tmp_path)


def test_content_that_is_not_base64_is_an_unexpected_response() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {
            "execution_id": "00000000-0000-0000-0000-000000000000",
            "status": "success",
            "output": "",
            "stderr": "",
            "exit_code": 0,
            "error": None,
            "duration_ms": 1,
            "fuel_consumed": 1,
            "memory_peak_bytes": 1,
            "output_truncated": False,
            "stderr_truncated": False,
            "encoding": "base64",
            "files": [{"path": "a", "size": 1, "sha256": "0" * 64, "content": "not base64!"}],
            "files_truncated": False,
        }
        return httpx.Response(200, json=body)

    with (
        Client("http://x", "ww_x", transport=httpx.MockTransport(answer)) as client,
        pytest.raises(UnexpectedResponse),
    ):
        client.execute(b"\0asm", collect=["**"])


@pytest.mark.anyio
async def test_the_async_client_sends_files_from_paths_and_collects(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    local = tmp_path / "in.txt"
    local.write_bytes(b"async\n")
    async with AsyncClient(server.url, api_key) as client:
        from_path = await client.execute(COPY, files={"in.txt": local}, collect=["out/*"])
        from_archive = await client.execute(
            COPY, archive=tar_gz({"in.txt": b"tar\n"}), collect=["out/*"]
        )
    assert [(f.path, f.content) for f in from_path.files] == [("out/in.txt", b"async\n")]
    assert [(f.path, f.content) for f in from_archive.files] == [("out/in.txt", b"tar\n")]
    assert from_path.write_files(tmp_path / "w") == [tmp_path / "w" / "out" / "in.txt"]
