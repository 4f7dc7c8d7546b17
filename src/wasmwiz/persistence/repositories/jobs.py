"""Queries on jobs: every change of state is a conditional update, so two workers (or a
worker and a sweep) racing for one job change it once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import Job, JobPayload
from wasmwiz.persistence.repositories._rows import rowcount

QUEUED = "queued"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
CANCELLED = "cancelled"
EXPIRED = "expired"
ENDED = (FINISHED, FAILED, CANCELLED)


def add(session: AsyncSession, job: Job, payload: bytes) -> None:
    session.add(job)
    session.add(JobPayload(job_id=job.id, content=payload))


async def get(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    return await session.scalar(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    )


async def get_for_user(session: AsyncSession, user_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    return await session.scalar(
        select(Job)
        .where(Job.id == job_id, Job.user_id == user_id)
        .execution_options(populate_existing=True)
    )


async def payload(session: AsyncSession, job_id: uuid.UUID) -> bytes | None:
    return await session.scalar(select(JobPayload.content).where(JobPayload.job_id == job_id))


async def queued_usage(session: AsyncSession, user_id: uuid.UUID) -> tuple[int, int]:
    """How many of the account's jobs wait, and the bytes their payloads hold."""
    count, size = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Job.payload_size), 0)).where(
                Job.user_id == user_id, Job.state == QUEUED
            )
        )
    ).one()
    return int(count), int(size)


async def page_for_user(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    state: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Job]:
    """Newest first, `limit` of them, after the (created_at, id) of the last one shown."""
    query = select(Job).where(Job.user_id == user_id)
    if state is not None:
        query = query.where(Job.state == state)
    if after is not None:
        created_at, job_id = after
        query = query.where(
            or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id))
        )
    result = await session.scalars(
        query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    )
    return list(result)


async def claim(
    session: AsyncSession, job_id: uuid.UUID, *, now: datetime, lease: timedelta, max_attempts: int
) -> int | None:
    """Take a queued job to run: the attempt's number, or None if it is not queued (taken,
    cancelled, ended) or has had its attempts."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == QUEUED, Job.attempts < max_attempts)
        .values(
            state=RUNNING,
            attempts=Job.attempts + 1,
            started_at=now,
            lease_until=now + lease,
        )
    )
    if rowcount(result) != 1:
        return None
    return await session.scalar(select(Job.attempts).where(Job.id == job_id))


async def renew(session: AsyncSession, job_id: uuid.UUID, attempt: int, *, until: datetime) -> bool:
    """Extend a running attempt's lease; False if the attempt no longer holds the job."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == RUNNING, Job.attempts == attempt)
        .values(lease_until=until)
    )
    return rowcount(result) == 1


async def end(session: AsyncSession, job_id: uuid.UUID, attempt: int | None, **values: Any) -> bool:
    """End a job (finished, failed): only the attempt that holds it (`attempt`), or, for
    None, whatever holds it. False: someone else ended or took it first."""
    condition = [Job.id == job_id, Job.state == RUNNING]
    if attempt is not None:
        condition.append(Job.attempts == attempt)
    result = await session.execute(update(Job).where(*condition).values(lease_until=None, **values))
    if rowcount(result) != 1:
        return False
    await session.execute(delete(JobPayload).where(JobPayload.job_id == job_id))
    return True


async def requeue(
    session: AsyncSession, job_id: uuid.UUID, attempt: int, *, now: datetime, refund: bool
) -> bool:
    """Put a running attempt's job back in the queue (the server was busy: `refund` gives
    the attempt back)."""
    values: dict[str, Any] = {"state": QUEUED, "lease_until": None, "enqueued_at": now}
    if refund:
        values["attempts"] = Job.attempts - 1
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == RUNNING, Job.attempts == attempt)
        .values(**values)
    )
    return rowcount(result) == 1


async def cancel(
    session: AsyncSession, user_id: uuid.UUID, job_id: uuid.UUID, *, now: datetime, keep: timedelta
) -> bool:
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.user_id == user_id, Job.state == QUEUED)
        .values(state=CANCELLED, finished_at=now, expires_at=now + keep)
    )
    if rowcount(result) != 1:
        return False
    await session.execute(delete(JobPayload).where(JobPayload.job_id == job_id))
    return True


async def sweep_has_work(session: AsyncSession, now: datetime, lost_before: datetime) -> bool:
    """Whether a sweep would change anything: read first, so an idle server's sweep takes
    no write lock (on SQLite, a writer every few seconds makes other connections'
    deferred transactions fail)."""
    found = await session.scalar(
        select(Job.id)
        .where(
            or_(
                and_(Job.state == RUNNING, Job.lease_until < now),
                and_(Job.state == QUEUED, Job.enqueued_at < lost_before),
                and_(Job.state.in_(ENDED), Job.expires_at < now),
            )
        )
        .limit(1)
    )
    return found is not None


async def stale_running(session: AsyncSession, now: datetime, limit: int) -> Sequence[Job]:
    """Running jobs whose lease has run out: their process died or lost the database."""
    result = await session.scalars(
        select(Job).where(Job.state == RUNNING, Job.lease_until < now).limit(limit)
    )
    return list(result.all())


async def release_stale(session: AsyncSession, job: Job, *, now: datetime) -> bool:
    """Queue a stale running job again (the attempt stays counted)."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.state == RUNNING, Job.attempts == job.attempts)
        .where(Job.lease_until < now)
        .values(state=QUEUED, lease_until=None, enqueued_at=now)
    )
    return rowcount(result) == 1


async def queued_since(session: AsyncSession, before: datetime, limit: int) -> Sequence[uuid.UUID]:
    """Queued jobs whose message went on the queue before `before` (it may be lost)."""
    result = await session.scalars(
        select(Job.id).where(Job.state == QUEUED, Job.enqueued_at < before).limit(limit)
    )
    return list(result.all())


async def mark_enqueued(session: AsyncSession, job_ids: Sequence[uuid.UUID], now: datetime) -> None:
    if job_ids:
        await session.execute(
            update(Job).where(Job.id.in_(job_ids), Job.state == QUEUED).values(enqueued_at=now)
        )


async def expire(session: AsyncSession, now: datetime, limit: int) -> int:
    """Remove the results of ended jobs past their time; the rows stay, `expired`."""
    ids = list(
        (
            await session.scalars(
                select(Job.id).where(Job.state.in_(ENDED), Job.expires_at < now).limit(limit)
            )
        ).all()
    )
    if not ids:
        return 0
    result = await session.execute(
        update(Job).where(Job.id.in_(ids), Job.state.in_(ENDED)).values(state=EXPIRED, result=None)
    )
    await session.execute(delete(JobPayload).where(JobPayload.job_id.in_(ids)))
    return rowcount(result)
