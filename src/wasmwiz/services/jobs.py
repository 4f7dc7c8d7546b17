"""Jobs: an execution accepted now (202) and run later from the task queue (docs/jobs.md).

A job is admitted as a run is (its account's rate, daily quota and a concurrency slot while
its body is read), then kept: its row (state, attempts, lease) and its payload (what the
run needs). The queue carries only its id. A worker claims the row with a conditional
update that counts the attempt and sets a lease it renews while the run goes on; it ends
the job, writing the result and the run's usage row in one transaction, only if its attempt
still holds the row. So a message delivered twice runs the job once, and a job is recorded
once: by the attempt that finished it. It runs in one of its account's job slots (as many as
the tier's concurrency, apart from its synchronous runs'); with none free it goes back to
the queue for a moment.

Each process sweeps every JOB_SWEEP_SECONDS: a running job whose lease ran out (its process
was killed) is queued again, or failed once it has had JOB_MAX_ATTEMPTS; a queued job whose
message may be lost (Redis restarted, a crash between commit and enqueue) is enqueued
again; ended jobs past their tier's keeping time become `expired`, their result removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz import errors
from wasmwiz.observability.metrics import Metrics
from wasmwiz.observability.tracing import use_case_span
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import Job
from wasmwiz.persistence.repositories import jobs as job_rows
from wasmwiz.persistence.repositories import usage_logs, users
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox import RunResult
from wasmwiz.services.api_keys import tier_limits
from wasmwiz.services.executions import ExecutionRequest, ExecutionService, usage_record
from wasmwiz.services.job_payload import decode_request, encode_request
from wasmwiz.services.job_queue import TaskQueue
from wasmwiz.services.page_cursor import decode_cursor, encode_cursor
from wasmwiz.services.principals import Principal
from wasmwiz.services.rate_limits import AdmittedRequest
from wasmwiz.services.run_codec import decode_result, encode_result

logger = logging.getLogger(__name__)

RUN_TASK = "jobs.run"
STATES = (
    job_rows.QUEUED,
    job_rows.RUNNING,
    job_rows.FINISHED,
    job_rows.FAILED,
    job_rows.CANCELLED,
    job_rows.EXPIRED,
)
_SWEEP_BATCH = 500
# When the sandbox or its account's slots are full, a claimed job goes back to the queue for
# this long.
_BUSY_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as its owner sees it."""

    id: uuid.UUID
    state: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    attempts: int
    timeout_seconds: float
    callback_url: str | None
    execution_id: uuid.UUID | None
    cached: bool
    result: RunResult | None
    error_code: str | None
    error_detail: str | None

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls(
            id=job.id,
            state=job.state,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            expires_at=job.expires_at,
            attempts=job.attempts,
            timeout_seconds=job.timeout_seconds,
            callback_url=job.callback_url,
            execution_id=job.execution_id,
            cached=job.cached,
            result=decode_result(job.result) if job.result is not None else None,
            error_code=job.error_code,
            error_detail=job.error_detail,
        )


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    job: JobView
    admission: AdmittedRequest


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobView]
    next_cursor: str | None


AfterCommit = Callable[[], Awaitable[None]]


class JobEvents(Protocol):
    """What jobs tell the webhooks (services/webhooks.py)."""

    async def job_ended(self, session: AsyncSession, job: JobView) -> AfterCommit:
        """Add the job's event deliveries to `session` (not committed); the action returned
        is awaited after the commit."""
        ...

    async def check_target(self, url: str) -> None:
        """Refuse (InvalidRequest, invalid_callback_url) a callback URL the service may
        not call."""
        ...


class JobService:
    def __init__(
        self,
        database: Database,
        executions: ExecutionService,
        queue: TaskQueue,
        metrics: Metrics,
        *,
        lease_seconds: float,
        sweep_seconds: float,
        max_attempts: int,
        requeue_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        events: JobEvents | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._database = database
        self._tracer = tracer
        self._executions = executions
        self._queue = queue
        self._metrics = metrics
        self._lease = timedelta(seconds=lease_seconds)
        self._sweep_seconds = sweep_seconds
        self._max_attempts = max_attempts
        # A queued job's message older than this may be lost, and is enqueued again (a
        # duplicate costs a claim that fails).
        self._requeue_after = timedelta(seconds=requeue_seconds)
        self._clock = clock
        self._events = events
        self._sweeper: asyncio.Task[None] | None = None
        queue.task(RUN_TASK)(self._run_task)

    # ---- the API's side

    async def submit(
        self,
        principal: Principal,
        read: Callable[[], Awaitable[tuple[ExecutionRequest, str | None]]],
    ) -> SubmittedJob:
        """Admit as a run (rate, daily quota, a slot while the body is read), refuse an
        account with its tier's most jobs waiting, keep the job and enqueue it. The queue's
        message carries this span's context: the job's run continues the trace."""
        with use_case_span(self._tracer, "wasmwiz.job.submit") as span:
            submitted = await self._submit(principal, read)
            span.set_attribute("wasmwiz.job.id", str(submitted.job.id))
            return submitted

    async def _submit(
        self,
        principal: Principal,
        read: Callable[[], Awaitable[tuple[ExecutionRequest, str | None]]],
    ) -> SubmittedJob:
        async with self._executions.gate.admit(principal) as admission:
            try:
                request, callback_url = await read()
                await self._executions.check_module(principal, request)
                if callback_url is not None and self._events is not None:
                    await self._events.check_target(callback_url)
                job = await self._keep(principal, request, callback_url)
            except errors.WasmWizError as exc:
                exc.headers = {**admission.headers, **exc.headers}
                raise
        self._metrics.jobs.labels("submitted").inc()
        try:
            await self._queue.enqueue(RUN_TASK, str(job.id))
        except Exception:
            # The job is kept: it is accepted. Its message is only a wake-up call, which
            # the sweep sends again after JOB_REQUEUE_SECONDS; a 500 here would invite the
            # caller to submit it a second time.
            self._metrics.jobs.labels("enqueue_failed").inc()
            logger.warning(
                "the queue did not take job %s's message; the sweep enqueues it again",
                job.id,
                exc_info=True,
                extra={"event": "job_enqueue_failed", "job_id": str(job.id)},
            )
        return SubmittedJob(JobView.of(job), admission)

    async def _keep(
        self, principal: Principal, request: ExecutionRequest, callback_url: str | None
    ) -> Job:
        tier = principal.tier
        now = self._clock()
        payload = encode_request(request)
        async with self._database.writer() as session:
            waiting, held = await job_rows.queued_usage(session, principal.user_id)
            if waiting >= tier.max_queued_jobs:
                raise _queue_full(
                    f"This account has {waiting} jobs waiting, its tier's most "
                    f"({tier.max_queued_jobs}); wait for some to run or cancel them."
                )
            # What waiting jobs hold is storage, bounded by the tier's storage quota.
            if held + len(payload) > tier.max_stored_module_bytes:
                raise _queue_full(
                    f"This account's waiting jobs hold {held} bytes; this one's "
                    f"{len(payload)} more would pass its tier's {tier.max_stored_module_bytes}; "
                    "wait for some to run or cancel them."
                )
            job = Job(
                id=uuid.uuid4(),
                user_id=principal.user_id,
                api_key_id=principal.api_key_id,
                state=job_rows.QUEUED,
                created_at=now,
                enqueued_at=now,
                attempts=0,
                timeout_seconds=float(tier.job_timeout_seconds),
                result_seconds=tier.job_result_seconds,
                input_size=len(request.stdin),
                payload_size=len(payload),
                callback_url=callback_url,
                cached=False,
            )
            job_rows.add(session, job, payload)
            await session.commit()
        return job

    async def get(self, principal: Principal, job_id: uuid.UUID) -> JobView:
        async with self._database.session() as session:
            job = await job_rows.get_for_user(session, principal.user_id, job_id)
        if job is None:
            raise _not_found()
        return JobView.of(job)

    async def list(
        self, principal: Principal, *, state: str | None, limit: int, cursor: str | None
    ) -> JobPage:
        after = decode_cursor(cursor) if cursor else None
        async with self._database.session() as session:
            rows = await job_rows.page_for_user(
                session, principal.user_id, state=state, limit=limit + 1, after=after
            )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
        return JobPage([JobView.of(row) for row in rows], next_cursor)

    async def cancel(self, principal: Principal, job_id: uuid.UUID) -> JobView:
        now = self._clock()
        async with self._database.writer() as session:
            job = await job_rows.get_for_user(session, principal.user_id, job_id)
            if job is None:
                raise _not_found()
            keep = timedelta(seconds=job.result_seconds)
            if not await job_rows.cancel(session, principal.user_id, job_id, now=now, keep=keep):
                raise errors.Conflict(
                    f"The job is {job.state}: only a queued job can be cancelled.",
                    code=ProblemCode.JOB_NOT_CANCELLABLE,
                )
            await session.commit()
        self._metrics.jobs.labels("cancelled").inc()
        return await self.get(principal, job_id)

    # ---- the worker's side

    async def _run_task(self, job_id: str) -> None:
        """The queue's task: run the job if it is still queued (else a no-op)."""
        try:
            await self.run(uuid.UUID(job_id))
        except Exception:
            # The row stays running; its lease runs out and the sweep queues it again.
            logger.exception("job %s: the run failed unexpectedly", job_id)

    async def run(self, job_id: uuid.UUID) -> bool:
        """Claim, run and end the job; False if there was nothing to do."""
        with use_case_span(
            self._tracer,
            "wasmwiz.job.run",
            attributes={"wasmwiz.job.id": str(job_id)},
            kind=trace.SpanKind.CONSUMER,
        ):
            return await self._run(job_id)

    async def _run(self, job_id: uuid.UUID) -> bool:
        now = self._clock()
        async with self._database.writer() as session:
            attempt = await job_rows.claim(
                session, job_id, now=now, lease=self._lease, max_attempts=self._max_attempts
            )
            if attempt is None:
                trace.get_current_span().set_attribute("wasmwiz.job.claimed", False)
                return False
            trace.get_current_span().set_attribute("wasmwiz.job.attempt", attempt)
            job = await job_rows.get(session, job_id)
            payload = await job_rows.payload(session, job_id)
            user = await users.get_by_id(session, job.user_id) if job is not None else None
            await session.commit()
        if job is None or payload is None or user is None:
            await self._fail(job_id, attempt, ProblemCode.INTERNAL_ERROR, "the job's data is gone")
            return True
        principal = Principal(
            user_id=user.id,
            email=user.email,
            tier=tier_limits(user.tier),
            api_key_id=job.api_key_id,
        )
        request = replace(decode_request(payload), timeout_seconds=job.timeout_seconds)
        # An account runs at most its tier's concurrency in jobs at once, whatever the
        # number of workers and replicas: its jobs never take the whole sandbox.
        gate = self._executions.gate
        slot = await gate.take_job_slot(principal, job.timeout_seconds)
        if slot is None:
            trace.get_current_span().set_attribute("wasmwiz.job.requeued", "no_job_slot")
            await self._back_to_the_queue(job_id, attempt)
            return True
        started_at = self._clock()
        renewing = asyncio.create_task(self._renew(job_id, attempt))
        try:
            result, cached = await self._executions.run_admitted(principal, request)
        except errors.ServiceUnavailable:
            trace.get_current_span().set_attribute("wasmwiz.job.requeued", "sandbox_busy")
            await self._back_to_the_queue(job_id, attempt)  # the sandbox is full
            return True
        except errors.WasmWizError as refusal:
            trace.get_current_span().set_attribute("wasmwiz.refusal", str(refusal.code))
            await self._fail(job_id, attempt, refusal.code, refusal.message)
            return True
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await gate.release_job_slot(principal, slot)
        await self._finish(job, attempt, principal, started_at, result, cached)
        return True

    async def _back_to_the_queue(self, job_id: uuid.UUID, attempt: int) -> None:
        """No room now (the account's slots or the sandbox are full): queued again a little
        later, the attempt given back."""
        async with self._database.writer() as session:
            requeued = await job_rows.requeue(
                session, job_id, attempt, now=self._clock(), refund=True
            )
            await session.commit()
        if requeued:
            await self._queue.enqueue(RUN_TASK, str(job_id), delay=_BUSY_RETRY_SECONDS)

    async def _renew(self, job_id: uuid.UUID, attempt: int) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._database.writer() as session:
                    held = await job_rows.renew(
                        session, job_id, attempt, until=self._clock() + self._lease
                    )
                    await session.commit()
            except Exception:
                logger.warning("job %s: could not renew its lease", job_id, exc_info=True)
                continue
            if not held:
                return

    async def _finish(
        self,
        job: Job,
        attempt: int,
        principal: Principal,
        started_at: datetime,
        result: RunResult,
        cached: bool,
    ) -> None:
        record = usage_record(principal, started_at, job.input_size, result, cached=cached)
        span = trace.get_current_span()
        span.set_attributes(
            {"wasmwiz.run.outcome": result.outcome.value, "wasmwiz.execution.id": str(record.id)}
        )
        now = self._clock()
        after_commit: AfterCommit | None = None
        async with self._database.writer() as session:
            ended = await job_rows.end(
                session,
                job.id,
                attempt,
                state=job_rows.FINISHED,
                finished_at=now,
                expires_at=now + timedelta(seconds=job.result_seconds),
                result=encode_result(result),
                execution_id=record.id,
                cached=cached,
            )
            if not ended:
                # Another attempt took the job over (this one's lease ran out): its result
                # is the one recorded.
                logger.warning("job %s: attempt %d no longer holds it", job.id, attempt)
                return
            # The job's usage row is written with its result, in one transaction.
            with use_case_span(self._tracer, "wasmwiz.usage.write"):
                await usage_logs.insert_many(session, [record])
            if self._events is not None:
                ended_job = await job_rows.get(session, job.id)
                assert ended_job is not None
                after_commit = await self._events.job_ended(session, JobView.of(ended_job))
            await session.commit()
        self._metrics.jobs.labels("finished").inc()
        if after_commit is not None:
            await after_commit()

    async def _fail(self, job_id: uuid.UUID, attempt: int | None, code: str, detail: str) -> None:
        now = self._clock()
        after_commit: AfterCommit | None = None
        async with self._database.writer() as session:
            job = await job_rows.get(session, job_id)
            if job is None:
                return
            ended = await job_rows.end(
                session,
                job_id,
                attempt,
                state=job_rows.FAILED,
                finished_at=now,
                expires_at=now + timedelta(seconds=job.result_seconds),
                error_code=code,
                error_detail=detail,
            )
            if not ended:
                return
            if self._events is not None:
                ended_job = await job_rows.get(session, job_id)
                assert ended_job is not None
                after_commit = await self._events.job_ended(session, JobView.of(ended_job))
            await session.commit()
        self._metrics.jobs.labels("failed").inc()
        if after_commit is not None:
            await after_commit()

    # ---- the sweep

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="job-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                # The next round tries again; a sweep that fails loses nothing.
                logger.exception("the job sweep failed")
            await asyncio.sleep(self._sweep_seconds)

    async def sweep(self) -> None:
        """Queue again the jobs of dead runs (or fail them after their attempts), enqueue
        again queued jobs whose message may be lost, expire old results."""
        now = self._clock()
        lost_before = now - self._requeue_after
        async with self._database.session() as session:
            if not await job_rows.sweep_has_work(session, now, lost_before):
                return
        requeued: list[uuid.UUID] = []
        exhausted: list[uuid.UUID] = []
        async with self._database.writer() as session:
            for job in await job_rows.stale_running(session, now, _SWEEP_BATCH):
                if job.attempts >= self._max_attempts:
                    exhausted.append(job.id)
                elif await job_rows.release_stale(session, job, now=now):
                    requeued.append(job.id)
            lost = await job_rows.queued_since(session, lost_before, _SWEEP_BATCH)
            await job_rows.mark_enqueued(session, lost, now)
            expired = await job_rows.expire(session, now, _SWEEP_BATCH)
            await session.commit()
        for job_id in exhausted:
            await self._fail(
                job_id,
                None,
                ProblemCode.JOB_INTERRUPTED,
                f"The run was interrupted {self._max_attempts} times (its server stopped "
                "while it ran); it is not tried again.",
            )
        self._metrics.jobs.labels("requeued").inc(len(requeued))
        self._metrics.jobs.labels("expired").inc(expired)
        for job_id in [*requeued, *lost]:
            await self._queue.enqueue(RUN_TASK, str(job_id))
        if requeued or exhausted or lost or expired:
            logger.info(
                "job sweep: %d queued again, %d failed, %d enqueued again, %d expired",
                len(requeued),
                len(exhausted),
                len(lost),
                expired,
                extra={"event": "job_sweep"},
            )


def _queue_full(message: str) -> errors.LimitExceeded:
    return errors.LimitExceeded(
        message, code=ProblemCode.JOB_QUEUE_FULL, retry_after=1, headers={"Retry-After": "1"}
    )


def _not_found() -> errors.NotFound:
    return errors.NotFound("No job of this account by that id.", code=ProblemCode.JOB_NOT_FOUND)
