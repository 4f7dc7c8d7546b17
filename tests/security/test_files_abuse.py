"""Runs with files against a real server process: many writers at once stay within the
files budget, and no outcome (a timeout, a SIGKILL of the server) leaves anything behind.

Run directories live in the server's memory (docs/architecture.md), so "nothing left on
disk" is checked where anything could land: the server's TMPDIR and its VAR_DIR, before,
during and after. Memory is what a directory costs instead, so the budget is checked by
the server's peak RSS (VmHWM) against the budget.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import Account, create_account, start_server_process
from wasmwiz.persistence.migrate import upgrade_async

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
FIXTURES = Path(__file__).parents[1] / "sandbox" / "fixtures" / "files"
FILL = (FIXTURES / "fill.wasm").read_bytes()
# Creates `left.txt` in its directory, then loops until the time limit.
WRITE_THEN_LOOP = b"""
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "left.txt")
  (func (export "_start")
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 8)
      (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16)))
    (i32.store (i32.const 32) (i32.const 1024))
    (i32.store (i32.const 36) (i32.const 65536))
    (drop (call $write (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 40)))
    (loop $forever (br $forever))))
"""


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field}")


def tree(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*")}


def kept(var: Path) -> set[str]:
    """VAR_DIR's entries but the compile cache's artifacts and the database's journals."""
    return {
        path
        for path in tree(var)
        if not path.startswith("compiled/") and not path.endswith(("-wal", "-shm", "-journal"))
    }


def run_entries(temp: Path) -> set[str]:
    """What is in the server's WASM_TEMP_DIR beyond its scratch directories' markers."""
    return {path for path in tree(temp) if not re.fullmatch(SCRATCH, path)}


SCRATCH = r"wasmwiz-[0-9]+-[0-9a-f]{16}(/\.wasmwiz-scratch)?"


async def fill(client: httpx.AsyncClient, account: Account, mode: str = "bytes") -> tuple[int, str]:
    """`fill.wasm` in `mode`: "bytes" writes until refused; "hold" then keeps its file
    until the time limit, so that runs started together hold theirs at the same time."""
    response = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files={"wasm": ("fill.wasm", FILL)},
        data={"args": json.dumps([mode]), "collect": "[]"},
    )
    body = response.json()
    return response.status_code, body.get("output") or body.get("code", "")


@pytest.mark.slow
async def test_twenty_concurrent_writers_stay_within_the_files_budget(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    await upgrade_async(url)
    accounts = [await create_account(url) for _ in range(4)]
    budget, quota = 48 * MiB, 8 * MiB
    server = await asyncio.to_thread(
        start_server_process,
        tmp_path / "var",
        url,
        files_budget=str(budget),
        files_quota=str(quota),
        files_max_input_bytes=str(MiB),
        max_concurrent_executions="20",
        max_queued_executions="20",
        execution_timeout="4",
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            assert await fill(client, accounts[0]) == (
                200,
                f"bytes stopped after {quota}: Quota exceeded (errno 19)\n",
            )
            before = status_kib(server.process.pid, "VmRSS") * 1024
            outcomes = await asyncio.gather(
                *(fill(client, accounts[i % len(accounts)], "hold") for i in range(20))
            )
            peak = status_kib(server.process.pid, "VmHWM") * 1024
            # The budget is whole again: a writer alone gets its full quota.
            after = await fill(client, accounts[0])
    finally:
        server.stop()

    quota_hits = sum("Quota exceeded" in text for _, text in outcomes)
    budget_hits = sum("No space left on device" in text for _, text in outcomes)
    refused = sum(status == 503 and text == "server_busy" for status, text in outcomes)
    # A writer starved of CPU by 19 others may meet the time limit before either bound.
    unfinished = outcomes.count((200, ""))
    print(
        f"20 writers: {quota_hits} at their quota, {budget_hits} at the budget, "
        f"{refused} refused, {unfinished} out of time first; "
        f"RSS {before / MiB:.0f} MiB before, peak {peak / MiB:.0f} MiB"
    )
    others = [
        (status, text)
        for status, text in outcomes
        if not ("Quota exceeded" in text or "No space left" in text or text == "server_busy")
    ]
    assert quota_hits + budget_hits + refused + unfinished == 20, others
    # 20 quotas held at once (160 MiB) do not fit in the budget (48 MiB): it bound them.
    assert budget_hits + refused > 0
    assert quota_hits <= budget // quota
    # The directories' memory is the budget's; 20 runs' own memory and threads come on top.
    assert peak - before < budget + 48 * MiB
    assert after == (200, f"bytes stopped after {quota}: Quota exceeded (errno 19)\n")


@pytest.mark.slow
async def test_no_outcome_leaves_anything_on_disk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    await upgrade_async(url)
    account = await create_account(url)
    temp = tmp_path / "tmp"
    temp.mkdir()
    var = tmp_path / "var"
    os.environ["TMPDIR"] = str(temp)  # the server process inherits it
    try:
        server = await asyncio.to_thread(
            start_server_process, var, url, execution_timeout="1", wasm_temp_dir=str(temp)
        )
    finally:
        del os.environ["TMPDIR"]
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            started = kept(var)
            timed_out = await client.post(
                "/api/v1/execute",
                headers=account.headers,
                files=[
                    ("wasm", ("loop.wat", WRITE_THEN_LOOP)),
                    ("files", ("input/data.bin", os.urandom(512 * 1024))),
                ],
                data={"collect": '["**"]'},
            )
            body = timed_out.json()
            assert body["status"] == "timeout"
            assert [item["path"] for item in body["files"]] == ["input/data.bin", "left.txt"]
            assert run_entries(temp) == set()
            assert kept(var) == started
            # Killed mid-run: the run's directory dies with the process.
            in_flight = asyncio.ensure_future(
                client.post(
                    "/api/v1/execute",
                    headers=account.headers,
                    files=[
                        ("wasm", ("loop.wat", WRITE_THEN_LOOP)),
                        ("files", ("input/data.bin", os.urandom(512 * 1024))),
                    ],
                )
            )
            await asyncio.sleep(0.5)
            server.process.send_signal(signal.SIGKILL)
            with pytest.raises(httpx.TransportError):
                await in_flight
    finally:
        server.stop()
    assert server.process.returncode == -signal.SIGKILL
    assert run_entries(temp) == set()
    # What the server keeps in VAR_DIR (its database's journal aside) is as before.
    assert kept(var) == started
    # The killed process's own scratch directory is removed by the next start.
    (killed,) = [path for path in tree(temp) if "/" not in path]
    again = await asyncio.to_thread(start_server_process, var, url, wasm_temp_dir=str(temp))
    try:
        assert killed not in tree(temp)
        assert run_entries(temp) == set()
    finally:
        again.stop()
