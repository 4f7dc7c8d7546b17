"""Writes usage records in batches, off the request's critical path, without losing any.

A record handed to `record()` is in memory until a batch containing it commits. A failed
write keeps the batch and tries again; `close()` flushes everything, and whatever still
cannot be written then (the database is gone at shutdown) is appended to a spool file
that the next start replays first. Inserts are idempotent on the execution id, so a
batch that was written but whose commit reply was lost is harmless to write again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from opentelemetry import trace

from wasmwiz.observability.tracing import use_case_span
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import api_keys, usage_logs
from wasmwiz.persistence.repositories.usage_logs import UsageRecord

logger = logging.getLogger(__name__)


def record_to_json(record: UsageRecord) -> str:
    values = dataclasses.asdict(record)
    for name in ("id", "user_id", "api_key_id"):
        values[name] = str(values[name]) if values[name] is not None else None
    values["created_at"] = record.created_at.isoformat()
    return json.dumps(values)


def record_from_json(line: str) -> UsageRecord:
    values = json.loads(line)
    for name in ("id", "user_id", "api_key_id"):
        values[name] = uuid.UUID(values[name]) if values[name] is not None else None
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    return UsageRecord(**values)


def _last_use_per_key(batch: Sequence[UsageRecord]) -> dict[uuid.UUID, datetime]:
    latest: dict[uuid.UUID, datetime] = {}
    for record in batch:
        if record.api_key_id is not None:
            seen = latest.get(record.api_key_id)
            if seen is None or record.created_at > seen:
                latest[record.api_key_id] = record.created_at
    return latest


class UsageRecorder:
    def __init__(
        self,
        database: Database,
        *,
        spool_path: Path,
        flush_interval: float = 0.5,
        batch_size: int = 500,
        retry_delay: float = 1.0,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._database = database
        self._tracer = tracer
        # Each pending record's span (of the run that made it), linked from its write's.
        self._spans: dict[uuid.UUID, trace.SpanContext] = {}
        self._spool_path = spool_path
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        self._pending: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._oldest_pending_at: float | None = None
        self.written = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def lag_seconds(self) -> float:
        """How long the oldest unwritten record has waited."""
        if self._oldest_pending_at is None:
            return 0.0
        return time.monotonic() - self._oldest_pending_at

    async def start(self) -> None:
        await self._replay_spool()
        self._task = asyncio.create_task(self._run(), name="usage-recorder")

    def record(self, record: UsageRecord) -> None:
        if not self._pending:
            self._oldest_pending_at = time.monotonic()
        self._pending.append(record)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            self._spans[record.id] = span_context
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write what is pending now; raises if the database refuses.

        Only the records pending when the flush starts: those recorded while it writes
        wait for the next one. Otherwise, under steady load, a flush would never end and
        the recorder would write a handful of rows at a time, back to back, for as long
        as requests keep coming, instead of one batch per interval.
        """
        async with self._write_lock:
            due = len(self._pending)
            while due > 0:
                batch = self._pending[: min(due, self._batch_size)]
                await self._write(batch)
                del self._pending[: len(batch)]
                due -= len(batch)
                self._oldest_pending_at = time.monotonic() if self._pending else None

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        try:
            while self._pending:
                await self.flush()
        except Exception:
            logger.exception("usage records could not be written at shutdown; spooling them")
            self._spool(self._pending)
            self._pending.clear()
            self._spans.clear()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                self.failures += 1
                logger.exception("writing usage records failed; %d kept for retry", self.pending)
                await asyncio.sleep(self._retry_delay)

    async def _write(self, batch: Sequence[UsageRecord]) -> None:
        # A trace of its own, linked to the runs whose records it writes.
        links = [trace.Link(self._spans[record.id]) for record in batch if record.id in self._spans]
        with (
            trace.use_span(trace.INVALID_SPAN),
            use_case_span(
                self._tracer,
                "wasmwiz.usage.write",
                attributes={"wasmwiz.usage.records": len(batch)},
                links=links,
            ),
        ):
            async with self._database.writer() as session:
                await usage_logs.insert_many(session, batch)
                for key_id, last_used_at in _last_use_per_key(batch).items():
                    await api_keys.touch_last_used(session, key_id, now=last_used_at)
                await session.commit()
        for record in batch:
            self._spans.pop(record.id, None)
        self.written += len(batch)

    def _spool(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        self._spool_path.parent.mkdir(parents=True, exist_ok=True)
        with self._spool_path.open("a", encoding="utf-8") as spool:
            for record in records:
                spool.write(record_to_json(record) + "\n")

    async def _replay_spool(self) -> None:
        if not self._spool_path.exists():
            return
        lines = self._spool_path.read_text(encoding="utf-8").splitlines()
        records = [record_from_json(line) for line in lines if line.strip()]
        for start in range(0, len(records), self._batch_size):
            await self._write(records[start : start + self._batch_size])
        self._spool_path.unlink()
        logger.info("replayed %d spooled usage records", len(records))
