"""Files in and out of POST /api/v1/execute over real HTTP: `files`, `archive`, `collect`,
each refusal by its code, and the quota a guest meets while it writes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.api.test_rate_limits import wait_until_running
from tests.fixtures.app import Account, ServerFactory, create_account

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parents[1] / "sandbox" / "fixtures" / "files"
COPY = (FIXTURES / "copy.wasm").read_bytes()
FILL = (FIXTURES / "fill.wasm").read_bytes()


async def run(
    client: httpx.AsyncClient,
    account: Account,
    wasm: bytes,
    *,
    files: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    archive: bytes | None = None,
    data: dict[str, str] | None = None,
) -> httpx.Response:
    parts: list[tuple[str, tuple[str, bytes]]] = [("wasm", ("prog.wasm", wasm))]
    parts += [("files", (path, content)) for path, content in files]
    if archive is not None:
        parts.append(("archive", ("input.bin", archive)))
    return await client.post(
        "/api/v1/execute", headers=account.headers, files=parts, data=data or {}
    )


def tar_of(members: dict[str, bytes | None], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def collected(body: dict[str, object]) -> dict[str, bytes]:
    files = body["files"]
    assert isinstance(files, list)
    return {item["path"]: base64.b64decode(item["content"]) for item in files}


async def test_a_mebibyte_of_binary_round_trips_through_a_file(
    client: httpx.AsyncClient, account: Account
) -> None:
    payload = os.urandom(1024 * 1024)
    response = await run(
        client, account, COPY, files=[("in.txt", payload)], data={"collect": '["out/*"]'}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    assert body["output"] == "copied 1048576 bytes\n"
    (item,) = body["files"]
    assert item["path"] == "out/in.txt"
    assert item["size"] == len(payload)
    assert item["sha256"] == hashlib.sha256(payload).hexdigest()
    assert base64.b64decode(item["content"]) == payload
    assert body["files_truncated"] is False


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip"])
async def test_an_archive_is_expanded_into_the_directory(
    client: httpx.AsyncClient, account: Account, kind: str
) -> None:
    payload = os.urandom(70_000)
    if kind == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("in.txt", payload)
            archive.writestr("empty/", b"")
        data = buffer.getvalue()
    else:
        data = tar_of({"in.txt": payload, "empty": None}, compress=kind == "tar.gz")
    response = await run(client, account, COPY, archive=data, data={"collect": '["**"]'})
    body = response.json()
    assert body["status"] == "success", body
    assert collected(body) == {"in.txt": payload, "out/in.txt": payload}


async def test_collect_alone_gives_an_empty_directory_and_runs_without_one_have_none(
    client: httpx.AsyncClient, account: Account
) -> None:
    with_directory = (await run(client, account, COPY, data={"collect": '["**"]'})).json()
    assert with_directory["status"] == "exit_nonzero"
    assert "in.txt: No such file or directory" in with_directory["stderr"]
    assert with_directory["files"] == []
    without = (await run(client, account, COPY)).json()
    assert without["status"] == "exit_nonzero"
    assert "in.txt" in without["stderr"]
    assert without["files"] == []
    assert without["files_truncated"] is False


async def test_collected_files_past_the_output_cap_are_listed_without_content(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory(files_max_output_bytes=1000)
    account = await create_account(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        small, large = b"s" * 600, b"L" * 600
        response = await run(
            client,
            account,
            COPY,
            files=[("a.txt", small), ("b.txt", large), ("in.txt", b"x")],
            data={"collect": '["*.txt"]'},
        )
    body = response.json()
    assert body["files_truncated"] is True
    by_path = {item["path"]: item for item in body["files"]}
    assert base64.b64decode(by_path["a.txt"]["content"]) == small
    assert by_path["b.txt"]["content"] is None
    assert by_path["b.txt"]["size"] == 600
    assert by_path["b.txt"]["sha256"] == hashlib.sha256(large).hexdigest()


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    block = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros", "w", force_zip64=True) as member,
    ):
        for _ in range(200):  # 200 MiB of zeros, about 200 KiB compressed
            member.write(block)
    return buffer.getvalue()


def _symlink_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("passwd")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    return buffer.getvalue()


REFUSALS = {
    "traversal": ({"files": [("../escape.txt", b"x")]}, 400, "invalid_file_path"),
    "absolute": ({"files": [("/etc/passwd", b"x")]}, 400, "invalid_file_path"),
    "duplicate": ({"files": [("a.txt", b"1"), ("a.txt", b"2")]}, 400, "duplicate_file_path"),
    "link": ({"archive": _symlink_tar()}, 400, "file_type_not_allowed"),
    "too many": ({"files": [(f"f{i}", b"") for i in range(1001)]}, 400, "too_many_files"),
    "too large": ({"files": [("big", bytes(16 * 1024 * 1024 + 1))]}, 413, "files_too_large"),
    "zip bomb": ({"archive": _zip_bomb()}, 413, "files_too_large"),
    "not an archive": ({"archive": b"just some bytes" * 100}, 400, "invalid_archive"),
    "both": ({"files": [("a", b"")], "archive": tar_of({"b": b""})}, 400, "files_and_archive"),
    "bad collect": ({"data": {"collect": '["../x"]'}}, 400, "invalid_collect"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_each_bad_input_is_refused_with_its_code(
    client: httpx.AsyncClient, account: Account, case: str
) -> None:
    options, status, code = REFUSALS[case]
    response = await run(client, account, COPY, **options)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


@pytest.mark.parametrize("mode", ["bytes", "entries"])
async def test_a_guest_writing_without_end_meets_the_quota(
    server_factory: ServerFactory, migrated_database_url: str, mode: str
) -> None:
    server = server_factory(
        files_quota=8 * 1024 * 1024,
        files_max_input_bytes=1024 * 1024,
        files_max_entries=500,
        files_max_input_entries=100,
    )
    account = await create_account(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await _writes_until_the_quota(client, account, mode)


async def _writes_until_the_quota(client: httpx.AsyncClient, account: Account, mode: str) -> None:
    response = await run(client, account, FILL, data={"args": json.dumps([mode])})
    # No directory was asked for: the guest cannot even create a file.
    without = response.json()
    assert without["output"].startswith("entries stopped after 0") or without["stderr"].startswith(
        "open:"
    ), without
    # `collect` alone (even empty) gives a run an empty directory.
    response = await run(client, account, FILL, data={"args": json.dumps([mode]), "collect": "[]"})
    body = response.json()
    assert body["status"] == "success", body
    assert "Quota exceeded (errno 19)" in body["output"], body["output"]  # EDQUOT
    stopped_after = int(body["output"].split("after ")[1].split(":")[0])
    assert stopped_after == (8 * 1024 * 1024 if mode == "bytes" else 500)


async def test_every_case_of_a_batch_gets_its_own_copy_of_the_directory(
    client: httpx.AsyncClient, account: Account
) -> None:
    """The program appends nothing: it copies in.txt to out/in.txt. Each case finds the
    pristine input (no case sees another's out/), and returns its own files."""
    payload = os.urandom(4096)
    response = await client.post(
        "/api/v1/execute/batch",
        headers=account.headers,
        files=[("wasm", ("copy.wasm", COPY)), ("files", ("in.txt", payload))],
        data={"cases": json.dumps([{}, {}, {}]), "collect": '["**"]'},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 3
    for result in results:
        assert result["status"] == "success", result
        assert collected(result) == {"in.txt": payload, "out/in.txt": payload}


# Sleeps two seconds (poll_oneoff), holding its run's directory all the while.
SLEEP_TWO_SECONDS = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 2000000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
"""


async def test_a_batch_case_waits_for_room_in_the_files_budget_and_is_not_lost(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    # 3 MiB and 8 KiB for every run's directory together; a run starts only with 1 MiB of
    # room beyond its input (and 512 bytes an entry). Two sleepers with 1 MiB of input
    # each leave about 1 MiB: too little for a case's 64 KiB until they end, so the
    # batch's first case is refused for want of room, waits and runs; no case may come
    # back as never finished.
    mib = 1024 * 1024
    server = server_factory(
        execution_timeout=10,
        files_budget=3 * mib + 8192,
        files_quota=3 * mib,
        files_max_input_bytes=mib,
    )
    sleepers = [await create_account(migrated_database_url, tier="pro") for _ in range(2)]
    account = await create_account(migrated_database_url, tier="pro")
    payload = os.urandom(64 * 1024)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        sleeping = [
            asyncio.ensure_future(
                run(client, sleeper, SLEEP_TWO_SECONDS.encode(), files=[("in", bytes(mib))])
            )
            for sleeper in sleepers
        ]
        await wait_until_running(client, 2)
        batch = await client.post(
            "/api/v1/execute/batch",
            headers=account.headers,
            files=[("wasm", ("copy.wasm", COPY)), ("files", ("in.txt", payload))],
            data={"cases": json.dumps([{}, {}, {}]), "collect": '["out/**"]'},
        )
        slept = await asyncio.gather(*sleeping)
    assert [response.json()["status"] for response in slept] == ["success", "success"]
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [result["status"] for result in results] == ["success"] * 3, results
    assert all(collected(result) == {"out/in.txt": payload} for result in results)


async def test_a_batch_refuses_bad_files_as_a_single_run_does(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.post(
        "/api/v1/execute/batch",
        headers=account.headers,
        files=[("wasm", ("copy.wasm", COPY)), ("files", ("../x", b""))],
        data={"cases": "[{}]"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_file_path"


async def test_empty_file_fields_are_no_files(client: httpx.AsyncClient, account: Account) -> None:
    """As Swagger UI's "Try it out" sends a form: `files=` and `archive=` left empty."""
    response = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files=[("wasm", ("copy.wasm", COPY))],
        data={"files": "", "archive": ""},
    )
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "exit_nonzero"  # no directory: in.txt cannot be opened
    assert body["files"] == []


async def test_a_run_the_files_budget_cannot_hold_is_server_busy(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    """A run with files starts only if the budget holds its input and 1 MiB more."""
    MiB = 1024 * 1024
    server = server_factory(
        files_budget=2 * MiB, files_quota=2 * MiB, files_max_input_bytes=2 * MiB
    )
    account = await create_account(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        refused = await run(client, account, COPY, files=[("in.txt", bytes(1536 * 1024))])
        fits = await run(client, account, COPY, files=[("in.txt", bytes(512 * 1024))])
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "server_busy"
    assert "room for run directories" in refused.json()["detail"]
    assert refused.headers["Retry-After"]
    assert fits.json()["status"] == "success", fits.text
