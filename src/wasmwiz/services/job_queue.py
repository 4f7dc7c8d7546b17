"""The task queue under jobs and webhook deliveries: huey, on SQLite or Redis.

huey carries *which* task to run and *when* (a delay for a retry); what a task is about
lives in our database (a job's row, a delivery's row), which is the source of truth. So a
message lost with a killed process, or with a Redis that keeps nothing on disk, loses no
work: the services' sweeps find what their rows say is due and enqueue it again, and a
task run twice does its work once (jobs claim their row with a conditional update).

Tasks are coroutine functions run on the application's event loop: huey's worker threads
take a message and hand its coroutine to the loop, waiting for it to end, so a task uses
the same database, sandbox and HTTP clients as a request. Messages are JSON, not pickle:
nothing read from a shared Redis is ever unpickled.

With SQLite storage (QUEUE_BACKEND=sqlite, the default without Redis) the queue is a file
beside the database and one process works it; with Redis every replica's workers take any
message of one shared queue (docs/architecture.md "Jobs").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Coroutine
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from huey.registry import Message
from huey.serializer import Serializer

from wasmwiz.observability.tracing import carrier, continued

logger = logging.getLogger(__name__)

TaskFunction = Callable[..., Coroutine[Any, Any, None]]

# How long an idle worker waits at most between looks at SQLite storage: the latency of a
# job on an idle server (Redis storage blocks on the list instead, and wakes at once).
_MAX_POLL_SECONDS = 0.25
_FIRST_POLL_SECONDS = 0.02
# How often the queue's depth is measured for the metrics: a scrape reads the last figure
# rather than asking the storage itself, which could hold the scrape (and the event loop
# serving /metrics) for as long as Redis takes to answer.
_DEPTH_SECONDS = 5.0


class JsonSerializer(Serializer):  # type: ignore[misc]
    """Messages as JSON: our tasks take strings and run now or at a time (no pickle)."""

    def _serialize(self, data: Any) -> bytes:
        message = data._asdict()
        if message["on_complete"] or message["on_error"] or message["chord_config"]:
            raise ValueError("task pipelines are not used here")
        for name in ("eta", "expires_resolved"):
            if isinstance(message[name], dt.datetime):
                message[name] = {"datetime": message[name].isoformat()}
        if isinstance(message["expires"], dt.datetime | dt.timedelta):
            raise ValueError("task expiry is not used here")
        return json.dumps(message, separators=(",", ":")).encode()

    def _deserialize(self, data: bytes) -> Any:
        message = json.loads(data)
        for name in ("eta", "expires_resolved"):
            value = message.get(name)
            if isinstance(value, dict):
                message[name] = dt.datetime.fromisoformat(value["datetime"])
        message["args"] = tuple(message.get("args") or ())
        return Message(**message)


class _InProcessConsumer(Consumer):  # type: ignore[misc]
    """huey's consumer inside the server: the server owns the signals, not the queue."""

    def _set_signal_handlers(self) -> None:
        pass


def build_huey(*, name: str, redis_url: str | None, sqlite_path: Path | None) -> Huey:
    """Redis storage when `redis_url` is given (replicas share it), else SQLite at
    `sqlite_path`."""
    serializer = JsonSerializer()
    if redis_url is not None:
        return RedisHuey(
            name, url=redis_url, results=False, serializer=serializer, blocking=True, read_timeout=1
        )
    if sqlite_path is None:
        raise ValueError("the SQLite queue needs a file")
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(sqlite_path), results=False, serializer=serializer)


async def _continuing(
    trace_context: dict[str, str], function: TaskFunction, args: tuple[str, ...]
) -> None:
    with continued(trace_context):
        await function(*args)


class TaskQueue:
    """Named coroutine tasks on a huey queue, worked by `workers` threads of this process."""

    def __init__(self, huey: Huey, *, workers: int) -> None:
        self._huey = huey
        self._workers = workers
        self._tasks: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: Consumer | None = None
        self._measuring: asyncio.Task[None] | None = None
        self.depth = math.nan  # messages waiting, as last measured; NaN until then

    @property
    def name(self) -> str:
        return str(self._huey.name)

    @property
    def huey(self) -> Huey:
        return self._huey

    def task(self, name: str) -> Callable[[TaskFunction], TaskFunction]:
        """Register `function(*args: str)` under `name`; register before `start`."""

        def register(function: TaskFunction) -> TaskFunction:
            def run(*args: str, **trace_context: str) -> None:
                # On a huey worker thread: the coroutine runs on the server's loop.
                loop = self._loop
                if loop is None or loop.is_closed():
                    raise RuntimeError("the task queue is not running")
                future: Future[None] = asyncio.run_coroutine_threadsafe(
                    _continuing(trace_context, function, args), loop
                )
                try:
                    future.result()
                except FutureCancelled:
                    logger.info("task %s cancelled (shutting down)", name)

            self._tasks[name] = self._huey.task(name=name)(run)
            return function

        return register

    async def enqueue(self, name: str, *args: str, delay: float = 0.0) -> None:
        """Put a message for task `name` on the queue, to run at once or after `delay` s.

        The message carries the current trace context (`traceparent`, as keyword
        arguments; none when tracing is off), which the task continues."""
        task = self._tasks[name]
        trace_context = carrier()
        if delay > 0:
            await asyncio.to_thread(task.schedule, args=args, kwargs=trace_context, delay=delay)
        else:
            await asyncio.to_thread(task, *args, **trace_context)

    async def pending(self) -> int:
        """Messages waiting (not those scheduled for later)."""
        return int(await asyncio.to_thread(self._huey.pending_count))

    async def measure(self) -> None:
        """Set `depth` from the storage; NaN when it cannot say (the metrics then show no
        figure rather than an old one)."""
        try:
            self.depth = float(await self.pending())
        except Exception:
            if not math.isnan(self.depth):  # once when it starts failing, not every round
                logger.warning("could not measure the task queue's depth", exc_info=True)
            self.depth = math.nan

    async def _measure_forever(self) -> None:
        while True:
            await self.measure()
            await asyncio.sleep(_DEPTH_SECONDS)

    def start(self) -> None:
        """Start the worker threads (none when `workers` is 0: this process only enqueues)."""
        self._loop = asyncio.get_running_loop()
        self._measuring = self._loop.create_task(self._measure_forever(), name="queue-depth")
        if self._workers < 1:
            return
        consumer = _InProcessConsumer(
            self._huey,
            workers=self._workers,
            periodic=False,
            initial_delay=_FIRST_POLL_SECONDS,
            max_delay=_MAX_POLL_SECONDS,
            scheduler_interval=1,
            worker_type="thread",
            check_worker_health=False,
        )
        consumer.start()
        self._consumer = consumer

    async def stop(self, wait_seconds: float) -> None:
        """Stop taking messages and wait up to `wait_seconds` for the running tasks; a task
        still running then is abandoned here and run again by a sweep (its row says so)."""
        measuring, self._measuring = self._measuring, None
        if measuring is not None:
            measuring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await measuring
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.shutdown_timeout = wait_seconds
            await asyncio.to_thread(consumer.stop, graceful=True)
        await asyncio.to_thread(self._huey.storage.close)
