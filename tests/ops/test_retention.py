"""The retention job deletes usage records older than the retention period, in batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.app import TEST_SALT
from tests.fixtures.database import run_outside_loop
from tests.persistence import factories
from wasmwiz.cli.main import main
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import UsageLog
from wasmwiz.persistence.repositories import usage_logs
from wasmwiz.services.retention import prune_usage

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def _seed(url: str, created: list[datetime]) -> None:
    database = Database(url)
    try:
        async with database.session() as session:
            user = await factories.make_user(session)
            records = [factories.usage_record(user.id, created_at=when) for when in created]
            await usage_logs.insert_many(session, records)
            await session.commit()
    finally:
        await database.dispose()


async def _created(url: str) -> list[datetime]:
    database = Database(url)
    try:
        async with database.session() as session:
            return sorted(await session.scalars(select(UsageLog.created_at)), reverse=True)
    finally:
        await database.dispose()


async def _prune(url: str, **options: int) -> int:
    database = Database(url)
    try:
        return await prune_usage(database, now=NOW, **options)
    finally:
        await database.dispose()


def _run(coroutine_factory: object) -> object:
    return run_outside_loop(lambda: asyncio.run(coroutine_factory()))  # type: ignore[operator]


def test_prune_keeps_the_retention_window_across_several_batches(
    migrated_database_url: str,
) -> None:
    ages = [0, 1, 29.9, 30.1, 31, 45, 90, 400, 401]
    _run(lambda: _seed(migrated_database_url, [NOW - timedelta(days=age) for age in ages]))
    deleted = _run(lambda: _prune(migrated_database_url, retention_days=30, batch_size=2))
    assert deleted == 6
    kept = _run(lambda: _created(migrated_database_url))
    assert [round((NOW - when) / timedelta(days=1), 1) for when in kept] == [0, 1, 29.9]  # type: ignore[attr-defined]
    again = _run(lambda: _prune(migrated_database_url, retention_days=30, batch_size=2))
    assert again == 0


def test_usage_prune_command(
    migrated_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)  # the command prunes relative to the real clock
    created = [now - timedelta(days=age) for age in (1, 10, 40)]
    _run(lambda: _seed(migrated_database_url, created))
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("API_SALT", TEST_SALT)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.chdir(tmp_path)
    assert main(["usage", "prune", "--days", "7", "--batch-size", "1"]) == 0
    assert "deleted 2 usage records older than 7 days" in capsys.readouterr().out
    assert len(_run(lambda: _created(migrated_database_url))) == 1  # type: ignore[arg-type]
