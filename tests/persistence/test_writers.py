"""Every unit of work in src/ that writes opens a writer session (BEGIN IMMEDIATE on SQLite)."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

import wasmwiz
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import tiers as tier_repository
from wasmwiz.persistence.repositories import users as user_repository

pytestmark = pytest.mark.anyio

SOURCE = Path(wasmwiz.__file__).parent


def _calls(node: ast.AST, method: str) -> bool:
    return any(
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == method
        for call in ast.walk(node)
    )


def _reader_blocks_that_write(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.With | ast.AsyncWith):
                continue
            opens_reader = any(_calls(item.context_expr, "session") for item in node.items)
            if opens_reader and (_calls(node, "commit") or _calls(node, "begin")):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_sessions_that_commit_are_writers() -> None:
    # A deferred SQLite transaction that reads, then writes, fails with "database is
    # locked" when another writer got in between; Database.writer() begins IMMEDIATE.
    assert _reader_blocks_that_write(SOURCE) == []


def test_the_check_finds_a_reader_that_commits(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "async def f(db):\n"
        "    async with db.session() as s:\n"
        "        await s.commit()\n"
        "    async with db.session() as s, s.begin():\n"
        "        pass\n"
        "    async with db.writer() as s:\n"
        "        await s.commit()\n"
        "    async with db.session() as s:\n"
        "        await s.get(1)\n"
    )
    assert _reader_blocks_that_write(tmp_path) == ["bad.py:2", "bad.py:4"]


async def _read_then_write(open_session: Callable[[], AsyncSession], email: str) -> None:
    async with open_session() as session:
        tier = await tier_repository.get_by_name(session, "free")
        assert tier is not None
        await asyncio.sleep(0.3)  # a slow step, during which the other unit reads too
        user_repository.create(session, email=email, tier_id=tier.id)
        await session.commit()


async def test_concurrent_writers_wait_for_each_other(database: Database) -> None:
    units = [_read_then_write(database.writer, f"w{i}@example.com") for i in range(4)]
    await asyncio.gather(*units)
    async with database.session() as session:
        assert await user_repository.count_users(session) == 4


async def test_readers_that_write_fail_on_sqlite_only(database: Database) -> None:
    # Why writer() exists: SQLite cannot upgrade a read snapshot another writer overtook,
    # and busy_timeout does not retry that. PostgreSQL takes row locks instead.
    units = [_read_then_write(database.session, f"r{i}@example.com") for i in range(2)]
    outcomes = await asyncio.gather(*units, return_exceptions=True)
    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    if not database.is_sqlite:
        assert failures == []
        return
    assert len(failures) == 1
    assert isinstance(failures[0], OperationalError)
    assert "database is locked" in str(failures[0])
