"""Stored modules through the sync client, on a real server and both databases: upload,
list, names, deletion, runs by reference, and the refusals that are theirs."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.api import wat
from tests.api.test_rate_limits import set_tier
from tests.client.conftest import new_account
from tests.fixtures.app import LiveServer, ServerFactory
from tests.fixtures.database import DATABASES, empty_database_url, run_outside_loop
from wasmwiz_client import (
    AsyncClient,
    Client,
    InvalidRequestError,
    ModuleExport,
    ModuleImport,
    NotFoundError,
    Outcome,
    PermissionDeniedError,
    StorageQuotaExceededError,
    StoredModule,
    StoredModuleNotFoundError,
)


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database_url(request.param, tmp_path) as url:
        yield url


def digest_id(module: str) -> str:
    return "sha256:" + hashlib.sha256(module.encode()).hexdigest()


def test_upload_describes_the_module_and_runs_by_id_and_name(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    path = tmp_path / "show-args.wat"
    path.write_text(wat.ARGS_AND_ENV)
    with Client(server.url, api_key) as client:
        stored = client.upload_module(path, name="show")
        again = client.upload_module(wat.ARGS_AND_ENV.encode())
        by_bytes = client.execute(path, args=["a b"], env={"K": "V"})
        by_id = client.execute(module=stored.id, args=["a b"], env={"K": "V"})
        by_name = client.execute(module="show", args=["a b"], env={"K": "V"})
        shown = client.get_module("show")

    assert isinstance(stored, StoredModule)
    assert stored.id == digest_id(wat.ARGS_AND_ENV)
    assert stored.size == len(wat.ARGS_AND_ENV.encode())
    assert isinstance(stored.created_at, datetime)
    assert stored.created_at.tzinfo is not None
    assert stored.names == ("show",)
    assert stored.is_command
    assert ModuleImport("wasi_snapshot_preview1", "args_get", "func") in stored.imports
    assert ModuleExport("_start", "func") in stored.exports
    assert again == shown == stored
    assert by_bytes.text == "show-args.wat\na b\n-\nK=V\n"
    # argv[0] comes from the reference the run named; the rest is the same run.
    assert by_name.text == "show\na b\n-\nK=V\n"
    assert by_id.text.partition("\n")[2] == "a b\n-\nK=V\n"
    assert by_id.request_id
    assert by_id.rate_limit is not None


def test_names_move_and_go_while_the_module_stays(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        first = client.upload_module(wat.printing("v1\n").encode(), name="grader")
        second = client.upload_module(wat.printing("v2\n").encode())
        before = client.execute(module="grader").text
        moved = client.tag_module("grader", second.id)
        after = client.execute(module="grader").text
        also = client.tag_module("latest", "grader")  # a name may name the target too
        client.untag_module("grader")
        with pytest.raises(StoredModuleNotFoundError) as gone:
            client.execute(module="grader")
        remaining = {stored.id: stored.names for stored in client.iter_modules()}

    assert (before, after) == ("v1\n", "v2\n")
    assert moved.id == second.id
    assert moved.names == ("grader",)
    assert set(also.names) == {"grader", "latest"}
    error = gone.value
    assert isinstance(error, NotFoundError)
    assert (error.status, error.code) == (404, "module_not_found")
    assert error.request_id
    assert remaining == {first.id: (), second.id: ("latest",)}


def test_delete_by_name_takes_the_module_and_its_names(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        stored = client.upload_module(wat.printing("temporary\n").encode(), name="temp")
        client.delete_module("temp")
        for reference in (stored.id, "temp"):
            with pytest.raises(StoredModuleNotFoundError):
                client.get_module(reference)
        with pytest.raises(StoredModuleNotFoundError):
            client.execute(module=stored.id)
        with pytest.raises(StoredModuleNotFoundError):
            client.delete_module(stored.id)
        with pytest.raises(StoredModuleNotFoundError):
            client.untag_module("temp")
        assert list(client.iter_modules()) == []


def test_pages_and_the_iterator_walk_every_module_newest_first(
    server: LiveServer, api_key: str
) -> None:
    with Client(server.url, api_key) as client:
        ids = [client.upload_module(wat.printing(f"{i}\n").encode()).id for i in range(5)]
        first = client.list_modules(limit=2)
        second = client.list_modules(limit=2, cursor=first.next_cursor)
        walked = [stored.id for stored in client.iter_modules(page_size=2)]
        default = client.list_modules()

    assert len(first.items) == len(second.items) == 2
    assert first.next_cursor is not None
    assert [stored.id for stored in first.items + second.items] == walked[:4]
    assert walked == ids[::-1]
    assert default.next_cursor is None
    assert [stored.id for stored in default.items] == walked


def test_another_account_sees_none_of_them(
    server: LiveServer, api_key: str, migrated_database_url: str
) -> None:
    other = new_account(migrated_database_url).api_key
    with Client(server.url, api_key) as mine:
        stored = mine.upload_module(wat.printing("mine\n").encode(), name="mine")
    with Client(server.url, other) as theirs:
        for reference in (stored.id, "mine"):
            with pytest.raises(StoredModuleNotFoundError):
                theirs.execute(module=reference)
        assert theirs.list_modules().items == ()


def test_a_full_storage_quota_raises_storage_quota_exceeded(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    run_outside_loop(
        lambda: asyncio.run(set_tier(migrated_database_url, "free", max_stored_modules=1))
    )
    key = new_account(migrated_database_url, tier="free").api_key
    server = server_factory()
    with Client(server.url, key) as client:
        client.upload_module(wat.printing("first\n").encode())
        with pytest.raises(StorageQuotaExceededError) as info:
            client.upload_module(wat.printing("second\n").encode())
        again = client.upload_module(wat.printing("first\n").encode())

    error = info.value
    assert isinstance(error, PermissionDeniedError)
    assert (error.status, error.code) == (403, "storage_quota_exceeded")
    assert error.detail
    assert again.id == digest_id(wat.printing("first\n"))


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda client: client.execute(module="Not A Name"), "invalid_module_reference"),
        (
            lambda client: client.upload_module(wat.HELLO.encode(), "Bad Name"),
            "invalid_module_name",
        ),
        (lambda client: client.tag_module("Bad Name", "x"), "invalid_module_name"),
    ],
    ids=["run", "upload", "tag"],
)
def test_bad_references_and_names_are_invalid_requests(
    server: LiveServer, api_key: str, call: Callable[[Client], object], code: str
) -> None:
    with Client(server.url, api_key) as client, pytest.raises(InvalidRequestError) as info:
        call(client)
    assert (info.value.status, info.value.code) == (400, code)


def test_a_reference_is_one_path_segment(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        client.upload_module(wat.HELLO.encode(), name="x")
        # `?` and `#` are quoted into the segment: a name the service does not know.
        for reference in ("x?limit=1", "x#y"):
            with pytest.raises(StoredModuleNotFoundError):
                client.get_module(reference)
        # A `/` is no id or name, and the service would route on it: `names/x` would
        # remove the name x. Refused before anything is sent.
        for reference in ("names/x", "../keys", "..", ""):
            with pytest.raises(ValueError, match="not a module reference"):
                client.delete_module(reference)
        with pytest.raises(ValueError, match="not a module name"):
            client.untag_module("a/b")
        assert client.get_module("x").names == ("x",)


def test_a_stored_module_runs_a_batch_with_shared_options(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        client.upload_module(wat.ECHO.encode(), name="echo")
        client.upload_module(wat.INFINITE_LOOP.encode(), name="loop")
        echoed = client.run_batch(
            [{"stdin": "a"}, {"stdin": "b"}], module="echo", deterministic=True, seed=3
        )
        starved = client.run_batch([{}, {}], module="loop", max_fuel=10_000)
        with pytest.raises(StoredModuleNotFoundError):
            client.run_batch([{}], module="nothing-here")

    assert [result.text for result in echoed.results] == ["a", "b"]
    assert echoed.ok
    assert [result.status for result in starved.results] == [Outcome.FUEL_EXHAUSTED] * 2


@pytest.mark.anyio
async def test_the_async_client_does_the_same(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    path = tmp_path / "echo.wat"
    path.write_text(wat.ECHO)
    async with AsyncClient(server.url, api_key) as client:
        stored = await client.upload_module(path, name="echo")
        ran = await asyncio.gather(
            *(client.execute(module="echo", input=f"{i}\n") for i in range(4))
        )
        others = [
            (await client.upload_module(wat.printing(f"{i}\n").encode())).id for i in range(2)
        ]
        page = await client.list_modules(limit=1)
        walked = [item.id async for item in client.iter_modules(page_size=1)]
        tagged = await client.tag_module("copy", "echo")
        await client.untag_module("echo")
        shown = await client.get_module(stored.id)
        await client.delete_module("copy")
        with pytest.raises(StoredModuleNotFoundError):
            await client.execute(module=stored.id)
        with pytest.raises(ValueError, match="not both"):
            await client.execute(path, module="echo")

    assert stored.id == digest_id(wat.ECHO)
    assert [result.text for result in ran] == [f"{i}\n" for i in range(4)]
    assert page.next_cursor is not None
    assert walked == [*others[::-1], stored.id]
    assert set(tagged.names) == {"copy", "echo"}
    assert shown.names == ("copy",)


def test_wasm_or_module_exactly_one_is_checked_before_sending() -> None:
    # No server: the client refuses before it connects anywhere.
    with Client("http://127.0.0.1:9", "ww_x") as client:
        with pytest.raises(ValueError, match="not both"):
            client.execute(wat.HELLO.encode(), module="hello")
        with pytest.raises(ValueError, match="no module"):
            client.execute()
        with pytest.raises(ValueError, match="not both"):
            client.run_batch([{}], wasm=wat.HELLO.encode(), module="hello")
        with pytest.raises(ValueError, match="no module"):
            client.run_batch([{}])
