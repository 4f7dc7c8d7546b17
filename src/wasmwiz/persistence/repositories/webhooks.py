"""Queries on webhook endpoints, events and deliveries: a delivery changes state only by
a conditional update, so two workers (or a worker and a sweep) change it once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import (
    Job,
    WebhookCallbackSecret,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from wasmwiz.persistence.repositories._rows import rowcount

PENDING = "pending"
DELIVERING = "delivering"
SUCCEEDED = "succeeded"
FAILED = "failed"


# ---- endpoints


async def count_endpoints(session: AsyncSession, user_id: uuid.UUID) -> int:
    query = select(func.count()).where(WebhookEndpoint.user_id == user_id)
    return int(await session.scalar(query) or 0)


async def get_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if user_id is not None:
        query = query.where(WebhookEndpoint.user_id == user_id)
    return await session.scalar(query.execution_options(populate_existing=True))


async def page_endpoints(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[WebhookEndpoint]:
    """Newest first, `limit` of them, after the (created_at, id) of the last one shown."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id)
    if after is not None:
        query = query.where(_before(WebhookEndpoint, after))
    query = query.order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
    return list(await session.scalars(query.limit(limit)))


async def subscribed_endpoints(
    session: AsyncSession, user_id: uuid.UUID, event_type: str
) -> list[WebhookEndpoint]:
    """The account's enabled endpoints that take `event_type`."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.user_id == user_id, WebhookEndpoint.enabled.is_(True)
    )
    return [e for e in await session.scalars(query) if event_type in e.events.split()]


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    await session.delete(endpoint)


async def count_failure(session: AsyncSession, endpoint_id: uuid.UUID) -> int | None:
    """One more delivery in a row that failed every attempt; the count now (None: gone)."""
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(consecutive_failures=WebhookEndpoint.consecutive_failures + 1)
    )
    query = select(WebhookEndpoint.consecutive_failures).where(WebhookEndpoint.id == endpoint_id)
    return await session.scalar(query)


async def reset_failures(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.consecutive_failures != 0)
        .values(consecutive_failures=0)
    )


async def disable_failing(
    session: AsyncSession, endpoint_id: uuid.UUID, *, now: datetime, reason: str
) -> bool:
    """Disable an endpoint that keeps failing; False if it was disabled already."""
    result = await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
        .values(enabled=False, disabled_at=now, disabled_reason=reason)
    )
    return rowcount(result) == 1


# ---- events and deliveries


async def event_exists(session: AsyncSession, user_id: uuid.UUID, dedupe_key: str) -> bool:
    query = select(WebhookEvent.id).where(
        WebhookEvent.user_id == user_id, WebhookEvent.dedupe_key == dedupe_key
    )
    return await session.scalar(query) is not None


async def get_event(session: AsyncSession, event_id: uuid.UUID) -> WebhookEvent | None:
    return await session.get(WebhookEvent, event_id)


async def get_delivery(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    endpoint_id: uuid.UUID | None = None,
) -> WebhookDelivery | None:
    query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    if user_id is not None:
        query = query.where(WebhookDelivery.user_id == user_id)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return await session.scalar(query.execution_options(populate_existing=True))


async def page_deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[tuple[WebhookDelivery, str]]:
    """An endpoint's deliveries with their event's type, newest first."""
    query = (
        select(WebhookDelivery, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    if after is not None:
        query = query.where(_before(WebhookDelivery, after))
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    rows = await session.execute(query.limit(limit))
    return [(delivery, event_type) for delivery, event_type in rows]


async def claim(
    session: AsyncSession, delivery_id: uuid.UUID, *, now: datetime, lease_until: datetime
) -> int | None:
    """Take a due pending delivery for one attempt: its attempt's number, or None if it
    is not pending, not due, or taken by another worker meanwhile."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.state == PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(
            state=DELIVERING,
            attempts=WebhookDelivery.attempts + 1,
            next_attempt_at=lease_until,
            last_attempt_at=now,
        )
    )
    if rowcount(result) != 1:
        return None
    query = select(WebhookDelivery.attempts).where(WebhookDelivery.id == delivery_id)
    return await session.scalar(query)


async def end_attempt(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    attempt: int,
    *,
    state: str,
    next_attempt_at: datetime,
    status: int | None,
    error: str | None,
) -> bool:
    """Record an attempt's outcome, if that attempt still holds the delivery."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.state == DELIVERING,
            WebhookDelivery.attempts == attempt,
        )
        .values(state=state, next_attempt_at=next_attempt_at, last_status=status, last_error=error)
    )
    return rowcount(result) == 1


async def release_stale(session: AsyncSession, now: datetime) -> int:
    """Deliveries whose attempt's process died: pending again, due now."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.state == DELIVERING, WebhookDelivery.next_attempt_at < now)
        .values(state=PENDING, next_attempt_at=now, last_error="The attempt was interrupted.")
    )
    return rowcount(result)


async def sweep_has_work(session: AsyncSession, now: datetime, before: datetime) -> bool:
    """Whether a sweep would change or enqueue anything: read first, so an idle server's
    sweep takes no write lock (on SQLite, a writer every few seconds makes other
    connections' deferred transactions fail)."""
    found = await session.scalar(
        select(WebhookDelivery.id)
        .where(
            or_(
                and_(WebhookDelivery.state == DELIVERING, WebhookDelivery.next_attempt_at < now),
                and_(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= before),
            )
        )
        .limit(1)
    )
    return found is not None


async def due_since(session: AsyncSession, before: datetime, limit: int) -> Sequence[uuid.UUID]:
    """Pending deliveries due since `before`: their message may be lost."""
    query = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= before)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def events_done_before(
    session: AsyncSession, before: datetime, limit: int
) -> Sequence[uuid.UUID]:
    """Events created before `before` with no delivery still to make: the log to prune."""
    live = exists().where(
        WebhookDelivery.event_id == WebhookEvent.id,
        WebhookDelivery.state.in_((PENDING, DELIVERING)),
    )
    query = (
        select(WebhookEvent.id)
        .where(WebhookEvent.created_at < before, ~live)
        .order_by(WebhookEvent.created_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def delete_events(session: AsyncSession, event_ids: Sequence[uuid.UUID]) -> int:
    """Delete these events and their deliveries; how many events went."""
    if not event_ids:
        return 0
    await session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.event_id.in_(event_ids))
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        delete(WebhookEvent)
        .where(WebhookEvent.id.in_(event_ids))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def job_owner(session: AsyncSession, job_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(select(Job.user_id).where(Job.id == job_id))


# ---- callback secrets


async def callback_salt(session: AsyncSession, user_id: uuid.UUID) -> bytes:
    """The salt of the account's callback secret; empty until the first rotation."""
    row = await session.get(WebhookCallbackSecret, user_id, populate_existing=True)
    return row.secret_salt if row is not None else b""


async def set_callback_salt(
    session: AsyncSession, user_id: uuid.UUID, salt: bytes, now: datetime
) -> None:
    row = await session.get(WebhookCallbackSecret, user_id)
    if row is None:
        session.add(WebhookCallbackSecret(user_id=user_id, secret_salt=salt, created_at=now))
    else:
        row.secret_salt = salt
        row.created_at = now


def _before(
    model: type[WebhookEndpoint] | type[WebhookDelivery], after: tuple[datetime, uuid.UUID]
) -> ColumnElement[bool]:
    created_at, row_id = after
    return or_(
        model.created_at < created_at, and_(model.created_at == created_at, model.id < row_id)
    )
