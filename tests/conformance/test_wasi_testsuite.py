"""The official WASI test suite (preview 1, its C and AssemblyScript tests) through the HTTP
API, judged by the official runner's rules.

`wasi-testsuite/` here is the suite's `prod/testsuite-base` branch at 9f80ca35, wasm32-wasip1
only, copied unchanged with its specs and the `fs-tests.dir` fixture (Apache-2.0; its
README says what is in it). `cases.json` gives each test's args, env, stdin, expected exit
code and output, and `root`: the directory the official runner preopens, which each run
here uploads as a fresh tar.gz `archive` (the tests write into it). The runner's rules: the
exit code must be the one expected, and stdout and stderr too where the spec gives them.
No case is skipped.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import tarfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.app import Account, LiveServer, create_account, make_settings, start_server
from tests.fixtures.database import run_outside_loop

pytestmark = pytest.mark.anyio

SUITE = Path(__file__).parent / "wasi-testsuite"
CASES: list[dict[str, Any]] = json.loads((SUITE / "cases.json").read_text())["cases"]


def archive_of(root: Path) -> bytes:
    """`root`'s tree as a tar.gz, its entries relative to it (as the runner's preopen)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(root.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def suite_server(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path
) -> Iterator[tuple[LiveServer, Account]]:
    """One server for the whole suite (on SQLite: the suite tests the sandbox and the HTTP
    form, not the database), and one account."""
    directory = tmp_path_factory.mktemp("wasi-testsuite")
    shutil.copy(migrated_sqlite_template, directory / "wasmwiz.db")
    url = f"sqlite:///{directory / 'wasmwiz.db'}"
    server = start_server(make_settings(directory, url, execution_timeout=10.0))
    try:
        account = run_outside_loop(lambda: asyncio.run(create_account(url)))
        yield server, account
    finally:
        server.stop()


@pytest.fixture
async def suite(
    suite_server: tuple[LiveServer, Account],
) -> AsyncIterator[tuple[httpx.AsyncClient, Account]]:
    server, account = suite_server
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        yield client, account


def test_the_suite_is_whole() -> None:
    assert len(CASES) == 26
    assert sum(1 for case in CASES if case["root"]) == 7
    for case in CASES:
        assert (SUITE / case["wasm"]).is_file(), case["id"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"].rsplit("/", 1)[1] for case in CASES])
async def test_case_passes_through_the_api(
    suite: tuple[httpx.AsyncClient, Account], case: dict[str, Any]
) -> None:
    client, account = suite
    wasm = SUITE / case["wasm"]
    parts: list[tuple[str, tuple[str, bytes]]] = [("wasm", (wasm.name, wasm.read_bytes()))]
    if case["stdin"]:
        parts.append(("input", ("stdin", case["stdin"].encode())))
    if case["root"]:
        parts.append(("archive", ("root.tar.gz", archive_of(SUITE / case["root"]))))
    response = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files=parts,
        data={"args": json.dumps(case["args"]), "env": json.dumps(case["env"])},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expect = case["expect"]
    assert body["exit_code"] == expect["exit_code"], body
    if expect["stdout"] is not None:
        assert body["output"] == expect["stdout"]
    if expect["stderr"] is not None:
        assert body["stderr"] == expect["stderr"]


async def test_a_file_test_fails_without_its_directory(
    suite: tuple[httpx.AsyncClient, Account],
) -> None:
    """The file tests above read their fixture from the uploaded directory, not by chance."""
    client, account = suite
    (case,) = [case for case in CASES if case["id"].endswith("/fopen-with-access")]
    wasm = SUITE / case["wasm"]
    response = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files={"wasm": (wasm.name, wasm.read_bytes())},
        data={"collect": "[]"},  # an empty directory
    )
    body = response.json()
    assert body["exit_code"] != 0 or body["status"] == "trap", body
