"""What starting the app spends, by setting: the compile workers now or on the first
compile (COMPILE_WORKERS_AT_START)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.api import wat
from tests.fixtures.app import create_account, make_settings
from wasmwiz.app import create_app
from wasmwiz.sandbox.compile_protocol import WORKER_MODULE

pytestmark = pytest.mark.anyio


def compile_workers() -> set[int]:
    """This process's children that run the compile worker."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue  # it has ended since
            if WORKER_MODULE.encode() in command:
                pids.add(int(pid))
    return pids


@pytest.mark.parametrize("at_start", [True, False])
async def test_compile_workers_start_with_the_app_or_on_the_first_compile(
    tmp_path: Path, migrated_database_url: str, at_start: bool
) -> None:
    account = await create_account(migrated_database_url)
    settings = make_settings(
        tmp_path, migrated_database_url, compile_workers_at_start=at_start, compile_workers=2
    )
    before = compile_workers()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        started = compile_workers() - before
        assert len(started) == (2 if at_start else 0)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.post(
                "/api/v1/execute",
                headers=account.headers,
                files={"wasm": ("hello.wat", wat.HELLO.encode())},
            )
        assert response.json()["status"] == "success", response.text
        # On demand: one worker for the one compile; at start: the two, and no more.
        assert len(compile_workers() - before) == (2 if at_start else 1)
    assert not compile_workers() - before
