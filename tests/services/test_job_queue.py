"""The task queue measures its own depth for the metrics, without a scrape asking it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from wasmwiz.services.job_queue import TaskQueue, build_huey

pytestmark = pytest.mark.anyio


async def test_depth_follows_the_messages_waiting(tmp_path: Path) -> None:
    huey = build_huey(name="depth", redis_url=None, sqlite_path=tmp_path / "queue.db")
    queue = TaskQueue(huey, workers=0)  # nothing takes the messages: they wait
    ran: list[str] = []

    @queue.task("note")
    async def note(text: str) -> None:
        ran.append(text)

    assert math.isnan(queue.depth)  # not measured yet: no figure rather than a 0
    queue.start()
    try:
        await queue.measure()
        assert (queue.name, queue.depth) == ("depth", 0)
        await queue.enqueue("note", "a")
        await queue.enqueue("note", "b")
        await queue.measure()
        assert queue.depth == 2
    finally:
        await queue.stop(wait_seconds=1)
    assert ran == []


async def test_depth_is_unknown_when_the_storage_fails(tmp_path: Path) -> None:
    huey = build_huey(name="depth", redis_url="redis://127.0.0.1:1/0", sqlite_path=None)
    queue = TaskQueue(huey, workers=0)
    queue.depth = 3.0
    await queue.measure()
    assert math.isnan(queue.depth)
