"""Usage-log retention: delete records older than USAGE_RETENTION_DAYS, in short batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from wasmwiz.observability.metrics import Metrics
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import usage_logs

logger = logging.getLogger(__name__)


async def prune_usage(
    database: Database,
    *,
    retention_days: int,
    batch_size: int = 5000,
    now: datetime | None = None,
) -> int:
    """Delete usage records created more than `retention_days` ago; returns how many.

    Each batch commits on its own, so locks are short and an interrupted run keeps what
    it did; several replicas pruning at once only share the work.
    """
    if retention_days < 1 or batch_size < 1:
        raise ValueError("retention_days and batch_size must be at least 1")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    total = 0
    while True:
        async with database.writer() as session:
            deleted = await usage_logs.delete_batch_older_than(session, cutoff, limit=batch_size)
            await session.commit()
        total += deleted
        if deleted < batch_size:
            break
    logger.info(
        "pruned %d usage records older than %s",
        total,
        cutoff.isoformat(timespec="seconds"),
        extra={"event": "usage_pruned", "deleted": total},
    )
    return total


class RetentionJob:
    """Runs `prune_usage` every `interval` seconds in the background until closed."""

    def __init__(
        self,
        database: Database,
        metrics: Metrics,
        *,
        retention_days: int,
        batch_size: int,
        interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database = database
        self._metrics = metrics
        self._retention_days = retention_days
        self._batch_size = batch_size
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-retention")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                deleted = await prune_usage(
                    self._database,
                    retention_days=self._retention_days,
                    batch_size=self._batch_size,
                    now=self._clock(),
                )
                self._metrics.usage_pruned.inc(deleted)
            except Exception:
                # The next round tries again; a failed prune loses nothing.
                logger.exception("usage retention failed")
            await asyncio.sleep(self._interval)
