"""The webhooks use cases: endpoints (add, change, delete, rotate their secret), events
recorded with their deliveries in the transaction of what happened, and delivery from the
task queue, at least once.

A delivery's row is its truth; the queue only says which row to look at. A worker claims
a due pending row with a conditional update (so one attempt runs however often the message
came), sends, and records the outcome only if its attempt still holds the row. A failed
attempt is retried after the next wait of WEBHOOK_RETRY_SCHEDULE, through a delayed
message; after the last, the delivery has failed, and an endpoint with
WEBHOOK_DISABLE_AFTER_FAILURES failed deliveries in a row is disabled (an
`endpoint.disabled` event tells the account's other endpoints). Each process sweeps every
WEBHOOK_SWEEP_SECONDS: an attempt whose process died is pending again, and a due delivery
whose message may be lost is enqueued again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from opentelemetry import trace
from sqlalchemy import event as orm_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz import errors
from wasmwiz.observability.tracing import use_case_span
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import ApiKey, WebhookDelivery, WebhookEndpoint, WebhookEvent
from wasmwiz.persistence.repositories import users as user_rows
from wasmwiz.persistence.repositories import webhooks as rows
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.ratelimit import Decision
from wasmwiz.services.job_queue import TaskQueue
from wasmwiz.services.page_cursor import decode_cursor, encode_cursor
from wasmwiz.services.principals import Principal
from wasmwiz.services.webhooks.events import (
    EventType,
    event_body,
    format_events,
    parse_events,
    stored_events,
)
from wasmwiz.services.webhooks.sender import AttemptOutcome, WebhookSender
from wasmwiz.services.webhooks.signing import (
    callback_secret,
    endpoint_secret,
    new_salt,
    signed_headers,
)
from wasmwiz.services.webhooks.targets import TargetPolicy, TargetRefused

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver"
MAX_PAGE_SIZE = 100
MAX_DESCRIPTION_LENGTH = 200
# The share of the daily quota at which an account is warned (once a UTC day).
QUOTA_WARNING_SHARE = 0.8
# A due delivery whose message is older than this may have lost it, and is enqueued again.
_LOST_MESSAGE_SECONDS = 60.0
# A message that arrives a little before its row says it is due (clocks of two replicas)
# still takes it.
_CLOCK_SLACK = timedelta(seconds=2)
_SWEEP_BATCH = 500

AfterCommit = Callable[[], Awaitable[None]]
# The job's JSON as the API gives it (api/jobs.py): the data of job events.
RenderJob = Callable[[Any], dict[str, Any]]
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    retry_delays: tuple[float, ...]
    """The waits before the second, third... attempts (WEBHOOK_RETRY_SCHEDULE)."""
    attempt_seconds: float
    max_endpoints: int
    disable_after_failures: int
    sweep_seconds: float
    log_days: int
    """Events and their deliveries are kept this long (WEBHOOK_LOG_DAYS), then deleted."""


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: uuid.UUID
    url: str
    description: str | None
    events: tuple[EventType, ...]
    enabled: bool
    created_at: datetime
    consecutive_failures: int
    disabled_at: datetime | None
    disabled_reason: str | None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointView:
        chosen = stored_events(endpoint.events)
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            events=tuple(event for event in EventType if event in chosen),
            enabled=endpoint.enabled,
            created_at=endpoint.created_at,
            consecutive_failures=endpoint.consecutive_failures,
            disabled_at=endpoint.disabled_at,
            disabled_reason=endpoint.disabled_reason,
        )


@dataclass(frozen=True, slots=True)
class CreatedEndpoint:
    endpoint: EndpointView
    secret: str


@dataclass(frozen=True, slots=True)
class EndpointPage:
    endpoints: list[EndpointView]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None

    @classmethod
    def of(cls, delivery: WebhookDelivery, event_type: str) -> DeliveryView:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=event_type,
            state=delivery.state,
            attempts=delivery.attempts,
            created_at=delivery.created_at,
            next_attempt_at=delivery.next_attempt_at if delivery.state == rows.PENDING else None,
            last_attempt_at=delivery.last_attempt_at,
            last_status=delivery.last_status,
            last_error=delivery.last_error,
        )


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    deliveries: list[DeliveryView]
    next_cursor: str | None


class WebhookService:
    def __init__(
        self,
        database: Database,
        queue: TaskQueue,
        *,
        signing_key: bytes,
        policy: TargetPolicy,
        sender: WebhookSender,
        options: WebhookOptions,
        render_job: RenderJob,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._database = database
        self._queue = queue
        self._tracer = tracer
        self._signing_key = signing_key
        self._policy = policy
        self._sender = sender
        self._options = options
        self._render_job = render_job
        self._clock = clock
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # The accounts warned of their quota today by this process: no query per run.
        self._warned: dict[uuid.UUID, date] = {}
        queue.task(DELIVER_TASK)(self._deliver_task)

    @property
    def max_endpoints(self) -> int:
        return self._options.max_endpoints

    # ---- targets

    async def check_target(self, url: str) -> None:
        """A job's callback URL: 400 `invalid_callback_url` unless the service may call it."""
        await self._check(url, ProblemCode.INVALID_CALLBACK_URL)

    async def _check(self, url: str, code: ProblemCode) -> None:
        try:
            await self._policy.check(url)
        except TargetRefused as refused:
            raise errors.InvalidRequest(str(refused), code=code) from None

    # ---- endpoints

    async def create_endpoint(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        *,
        url: str,
        events: Iterable[str],
        enabled: bool = True,
        description: str | None = None,
    ) -> CreatedEndpoint:
        """A new endpoint and its secret (shown this once), within the account's cap."""
        chosen = parse_events(events)
        description = _description(description)
        # The URL is resolved before the transaction begins: no lock held across DNS.
        await self._check(url, ProblemCode.WEBHOOK_URL_REFUSED)
        if not await user_rows.lock(session, user_id):
            raise errors.NotFound("No such user.")
        count = await rows.count_endpoints(session, user_id)
        if count >= self._options.max_endpoints:
            raise errors.Conflict(
                f"This account has {count} webhook endpoints, the most allowed; delete one first.",
                code=ProblemCode.TOO_MANY_WEBHOOKS,
            )
        endpoint = WebhookEndpoint(
            id=uuid.uuid4(),
            user_id=user_id,
            url=url,
            description=description,
            events=format_events(chosen),
            enabled=enabled,
            secret_salt=new_salt(),
            created_at=self._clock(),
            consecutive_failures=0,
        )
        session.add(endpoint)
        await session.flush()
        return CreatedEndpoint(EndpointView.of(endpoint), self._endpoint_secret(endpoint))

    async def list_endpoints(
        self, session: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> EndpointPage:
        after = decode_cursor(cursor) if cursor else None
        found = await rows.page_endpoints(session, user_id, limit=limit + 1, after=after)
        shown = found[:limit]
        more = len(found) > limit and shown
        return EndpointPage(
            [EndpointView.of(e) for e in shown],
            encode_cursor(shown[-1].created_at, shown[-1].id) if more else None,
        )

    async def get_endpoint(
        self, session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID
    ) -> EndpointView:
        return EndpointView.of(await self._endpoint(session, user_id, endpoint_id))

    async def update_endpoint(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        enabled: bool | None = None,
        description: str | None = _UNSET,
    ) -> EndpointView:
        """Change what is given; enabling an endpoint clears its failures."""
        chosen = parse_events(events) if events is not None else None
        if url is not None:
            await self._check(url, ProblemCode.WEBHOOK_URL_REFUSED)
        endpoint = await self._endpoint(session, user_id, endpoint_id)
        if url is not None:
            endpoint.url = url
        if chosen is not None:
            endpoint.events = format_events(chosen)
        if description is not _UNSET:
            endpoint.description = _description(description)
        if enabled is not None:
            if enabled and not endpoint.enabled:
                endpoint.consecutive_failures = 0
                endpoint.disabled_at = None
                endpoint.disabled_reason = None
            endpoint.enabled = enabled
        await session.flush()
        return EndpointView.of(endpoint)

    async def delete_endpoint(
        self, session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID
    ) -> None:
        """The endpoint and its delivery log."""
        endpoint = await self._endpoint(session, user_id, endpoint_id)
        await rows.delete_endpoint(session, endpoint)
        await session.flush()

    async def rotate_secret(
        self, session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID
    ) -> str:
        """A new secret (shown this once): deliveries from now on are signed with it."""
        endpoint = await self._endpoint(session, user_id, endpoint_id)
        endpoint.secret_salt = new_salt()
        await session.flush()
        return self._endpoint_secret(endpoint)

    async def list_deliveries(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
    ) -> DeliveryPage:
        await self._endpoint(session, user_id, endpoint_id)
        after = decode_cursor(cursor) if cursor else None
        found = await rows.page_deliveries(session, endpoint_id, limit=limit + 1, after=after)
        shown = found[:limit]
        more = len(found) > limit and shown
        return DeliveryPage(
            [DeliveryView.of(delivery, event_type) for delivery, event_type in shown],
            encode_cursor(shown[-1][0].created_at, shown[-1][0].id) if more else None,
        )

    async def redeliver(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        delivery_id: uuid.UUID,
    ) -> DeliveryView:
        """Send a delivery's event again, as a new delivery (the same `webhook-id`)."""
        endpoint = await self._endpoint(session, user_id, endpoint_id)
        original = await rows.get_delivery(
            session, delivery_id, user_id=user_id, endpoint_id=endpoint_id
        )
        if original is None:
            raise _not_found("No delivery of this endpoint by that id.")
        if not endpoint.enabled:
            raise errors.Conflict("The endpoint is disabled: enable it first.")
        event = await rows.get_event(session, original.event_id)
        assert event is not None
        delivery = self._delivery(event, endpoint_id=endpoint.id)
        session.add(delivery)
        await session.flush()
        self._enqueue_after_commit(session, [delivery.id])
        return DeliveryView.of(delivery, event.type)

    async def callback_secret(self, session: AsyncSession, user_id: uuid.UUID) -> str:
        """The secret that signs the account's job callbacks."""
        salt = await rows.callback_salt(session, user_id)
        return callback_secret(self._signing_key, user_id, salt)

    async def rotate_callback_secret(self, session: AsyncSession, user_id: uuid.UUID) -> str:
        salt = new_salt()
        await rows.set_callback_salt(session, user_id, salt, self._clock())
        await session.flush()
        return callback_secret(self._signing_key, user_id, salt)

    async def _endpoint(
        self, session: AsyncSession, user_id: uuid.UUID, endpoint_id: uuid.UUID
    ) -> WebhookEndpoint:
        endpoint = await rows.get_endpoint(session, endpoint_id, user_id=user_id)
        if endpoint is None:
            raise _not_found("No webhook endpoint of this account by that id.")
        return endpoint

    def _endpoint_secret(self, endpoint: WebhookEndpoint) -> str:
        return endpoint_secret(self._signing_key, endpoint.id, endpoint.secret_salt)

    # ---- events

    async def job_ended(self, session: AsyncSession, job: Any) -> AfterCommit:
        """A job finished or failed: its deliveries (the subscribed endpoints', and its
        callback URL's) added to `session`, not committed; the action returned enqueues
        them, to be awaited after the commit."""
        event_type = EventType.JOB_FINISHED if job.state == "finished" else EventType.JOB_FAILED
        user_id = await rows.job_owner(session, job.id)
        if user_id is None:
            return _nothing
        ids = await self._record(
            session,
            user_id,
            event_type,
            self._render_job(job),
            callback_url=job.callback_url,
        )
        return lambda: self._enqueue_all(ids)

    async def key_created(self, session: AsyncSession, key: ApiKey) -> None:
        ids = await self._record(session, key.user_id, EventType.KEY_CREATED, _key_data(key))
        self._enqueue_after_commit(session, ids)

    async def keys_revoked(self, session: AsyncSession, keys: Sequence[ApiKey]) -> None:
        ids: list[uuid.UUID] = []
        for key in keys:
            ids += await self._record(session, key.user_id, EventType.KEY_REVOKED, _key_data(key))
        self._enqueue_after_commit(session, ids)

    def quota_used(self, principal: Principal, decision: Decision) -> None:
        """An admission's account figures: the first to reach 80 % of the day's quota
        records a `quota.warning` (once per account and UTC day, across replicas)."""
        limit = decision.daily_limit
        used = limit - decision.daily_remaining
        if limit <= 0 or used < limit * QUOTA_WARNING_SHARE:
            return
        today = self._clock().date()
        if self._warned.get(principal.user_id) == today:
            return
        if any(day != today for day in self._warned.values()):
            self._warned = {user: day for user, day in self._warned.items() if day == today}
        self._warned[principal.user_id] = today
        self._spawn(self._warn_quota(principal.user_id, used, limit, today))

    async def _warn_quota(self, user_id: uuid.UUID, used: int, limit: int, day: date) -> None:
        dedupe_key = f"{EventType.QUOTA_WARNING.value}:{day.isoformat()}"
        data = {"date": day.isoformat(), "daily_limit": limit, "used": used}
        data["remaining"] = limit - used
        try:
            async with self._database.writer() as session:
                if await rows.event_exists(session, user_id, dedupe_key):
                    return
                ids = await self._record(
                    session, user_id, EventType.QUOTA_WARNING, data, dedupe_key=dedupe_key
                )
                await session.commit()
        except IntegrityError:
            return  # another replica warned first
        await self._enqueue_all(ids)

    async def _record(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        event_type: EventType,
        data: dict[str, Any],
        *,
        dedupe_key: str | None = None,
        callback_url: str | None = None,
        leaving_out: uuid.UUID | None = None,
    ) -> list[uuid.UUID]:
        """The event and a delivery per subscribed endpoint (and the callback URL), in
        `session`; their ids. No event is kept that no one is told of."""
        endpoints = [
            endpoint
            for endpoint in await rows.subscribed_endpoints(session, user_id, event_type)
            if endpoint.id != leaving_out
        ]
        if not endpoints and callback_url is None:
            return []
        now = self._clock()
        event = WebhookEvent(
            id=uuid.uuid4(),
            user_id=user_id,
            type=event_type.value,
            created_at=now,
            payload=event_body(event_type, now, data),
            dedupe_key=dedupe_key,
        )
        session.add(event)
        await session.flush()
        deliveries = [self._delivery(event, endpoint_id=endpoint.id) for endpoint in endpoints]
        if callback_url is not None:
            deliveries.append(self._delivery(event, url=callback_url))
        session.add_all(deliveries)
        await session.flush()
        return [delivery.id for delivery in deliveries]

    def _delivery(
        self, event: WebhookEvent, *, endpoint_id: uuid.UUID | None = None, url: str | None = None
    ) -> WebhookDelivery:
        now = self._clock()
        return WebhookDelivery(
            id=uuid.uuid4(),
            event_id=event.id,
            endpoint_id=endpoint_id,
            user_id=event.user_id,
            url=url,
            state=rows.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )

    # ---- delivery

    async def _enqueue_all(self, delivery_ids: Iterable[uuid.UUID]) -> None:
        for delivery_id in delivery_ids:
            try:
                await self._queue.enqueue(DELIVER_TASK, str(delivery_id))
            except Exception:
                # The row is pending and due: the sweep enqueues it again.
                logger.warning("could not enqueue webhook delivery %s", delivery_id, exc_info=True)

    def _enqueue_after_commit(self, session: AsyncSession, ids: list[uuid.UUID]) -> None:
        """Enqueue once `session` commits (a request's unit of work commits after the
        handler); rolled back, the rows are gone and nothing is enqueued."""
        if not ids:
            return

        def committed(_session: object) -> None:
            self._spawn(self._enqueue_all(ids))

        orm_event.listen(session.sync_session, "after_commit", committed, once=True)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("webhooks: background work failed")

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver_task(self, delivery_id: str) -> None:
        try:
            await self.deliver(uuid.UUID(delivery_id))
        except Exception:
            # The row stays delivering; the sweep makes it pending again after its lease.
            logger.exception("webhook delivery %s failed unexpectedly", delivery_id)

    async def deliver(self, delivery_id: uuid.UUID) -> bool:
        """One attempt of a due delivery; False if there was nothing to do. In a span that
        continues the trace of what enqueued it (the job's run, the request)."""
        with use_case_span(
            self._tracer,
            "wasmwiz.webhook.deliver",
            attributes={"wasmwiz.webhook.delivery.id": str(delivery_id)},
            kind=trace.SpanKind.CONSUMER,
        ):
            return await self._deliver(delivery_id)

    async def _deliver(self, delivery_id: uuid.UUID) -> bool:
        now = self._clock()
        lease = timedelta(seconds=self._options.attempt_seconds + 30)
        async with self._database.writer() as session:
            attempt = await rows.claim(
                session, delivery_id, now=now + _CLOCK_SLACK, lease_until=now + lease
            )
            if attempt is None:
                return False
            delivery = await rows.get_delivery(session, delivery_id)
            assert delivery is not None
            event = await rows.get_event(session, delivery.event_id)
            assert event is not None
            endpoint = None
            if delivery.endpoint_id is not None:
                endpoint = await rows.get_endpoint(session, delivery.endpoint_id)
                url, enabled = (endpoint.url, endpoint.enabled) if endpoint else ("", False)
                secret = self._endpoint_secret(endpoint) if endpoint else ""
            else:
                url, enabled = delivery.url or "", True
                salt = await rows.callback_salt(session, delivery.user_id)
                secret = callback_secret(self._signing_key, delivery.user_id, salt)
            await session.commit()
        span = trace.get_current_span()
        span.set_attributes(
            {"wasmwiz.webhook.event": event.type, "wasmwiz.webhook.attempt": attempt}
        )
        if not enabled:
            outcome = AttemptOutcome(None, "The endpoint is disabled.")
        else:
            headers = signed_headers(secret, event.id, self._clock(), event.payload)
            outcome = await self._sender.send(url, event.payload, headers)
        span.set_attribute("wasmwiz.webhook.succeeded", outcome.succeeded)
        if outcome.status is not None:
            span.set_attribute("http.response.status_code", outcome.status)
        if outcome.error is not None:
            span.set_attribute("wasmwiz.webhook.error", outcome.error)
        await self._end(delivery, attempt, outcome, retry=enabled)
        return True

    async def _end(
        self, delivery: WebhookDelivery, attempt: int, outcome: AttemptOutcome, *, retry: bool
    ) -> None:
        now = self._clock()
        delays = self._options.retry_delays
        wait = delays[attempt - 1] if retry and attempt <= len(delays) else None
        told: list[uuid.UUID] = []
        async with self._database.writer() as session:
            if outcome.succeeded:
                state, due = rows.SUCCEEDED, now
            elif wait is not None:
                state, due = rows.PENDING, now + timedelta(seconds=wait)
            else:
                state, due = rows.FAILED, now
            ended = await rows.end_attempt(
                session,
                delivery.id,
                attempt,
                state=state,
                next_attempt_at=due,
                status=outcome.status,
                error=outcome.error,
            )
            if not ended:
                return  # the sweep took the attempt for dead; the next one counts
            if delivery.endpoint_id is not None and state == rows.SUCCEEDED:
                await rows.reset_failures(session, delivery.endpoint_id)
            elif delivery.endpoint_id is not None and state == rows.FAILED and retry:
                told = await self._count_failure(session, delivery, now)
            await session.commit()
        if state == rows.PENDING and wait is not None:
            await self._queue.enqueue(DELIVER_TASK, str(delivery.id), delay=wait)
        await self._enqueue_all(told)

    async def _count_failure(
        self, session: AsyncSession, delivery: WebhookDelivery, now: datetime
    ) -> list[uuid.UUID]:
        """A delivery failed every attempt: disable its endpoint at the limit, and tell."""
        assert delivery.endpoint_id is not None
        failures = await rows.count_failure(session, delivery.endpoint_id)
        limit = self._options.disable_after_failures
        if failures is None or failures < limit:
            return []
        reason = f"{failures} deliveries in a row failed every attempt."
        if not await rows.disable_failing(session, delivery.endpoint_id, now=now, reason=reason):
            return []
        endpoint = await rows.get_endpoint(session, delivery.endpoint_id)
        assert endpoint is not None
        logger.warning(
            "webhook endpoint %s disabled: %s",
            endpoint.id,
            reason,
            extra={"event": "webhook_endpoint_disabled"},
        )
        data = {
            "id": str(endpoint.id),
            "url": endpoint.url,
            "reason": reason,
            "disabled_at": now.isoformat(),
        }
        return await self._record(
            session,
            delivery.user_id,
            EventType.ENDPOINT_DISABLED,
            data,
            leaving_out=endpoint.id,
        )

    # ---- the sweep

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="webhook-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def close_sender(self) -> None:
        await self._sender.close()

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
                await self.prune_log()
            except Exception:
                logger.exception("the webhook sweep failed")
            await asyncio.sleep(self._options.sweep_seconds)

    async def prune_log(self) -> int:
        """Delete events older than WEBHOOK_LOG_DAYS, and their deliveries, once none of
        them is still to be made; a batch a sweep. How many events went."""
        before = self._clock() - timedelta(days=self._options.log_days)
        async with self._database.session() as session:  # read first: an idle sweep writes nothing
            if not await rows.events_done_before(session, before, 1):
                return 0
        async with self._database.writer() as session:
            doomed = await rows.events_done_before(session, before, _SWEEP_BATCH)
            deleted = await rows.delete_events(session, doomed)
            await session.commit()
        logger.info(
            "webhook log: %d events older than %d days deleted",
            deleted,
            self._options.log_days,
            extra={"event": "webhook_log_pruned", "deleted": deleted},
        )
        return deleted

    async def sweep(self, *, lost_after: float = _LOST_MESSAGE_SECONDS) -> int:
        """Attempts whose process died become pending again; due deliveries whose message
        may be lost are enqueued again (a duplicate costs a claim that fails). How many
        were enqueued."""
        now = self._clock()
        async with self._database.session() as session:
            if not await rows.sweep_has_work(session, now, now - timedelta(seconds=lost_after)):
                return 0
        async with self._database.writer() as session:
            released = await rows.release_stale(session, now)
            due = await rows.due_since(session, now - timedelta(seconds=lost_after), _SWEEP_BATCH)
            await session.commit()
        await self._enqueue_all(due)
        if released or due:
            logger.info(
                "webhook sweep: %d interrupted attempts released, %d enqueued again",
                released,
                len(due),
                extra={"event": "webhook_sweep"},
            )
        return len(due)


async def _nothing() -> None:
    return None


def _key_data(key: ApiKey) -> dict[str, Any]:
    return {
        "id": str(key.id),
        "name": key.name,
        "prefix": key.prefix,
        "scopes": key.scopes.split(),
        "created_at": key.created_at.isoformat() if key.created_at else None,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise errors.InvalidRequest(
            f"A description has at most {MAX_DESCRIPTION_LENGTH} characters.",
            code=ProblemCode.INVALID_REQUEST,
        )
    return value or None


def _not_found(message: str) -> errors.NotFound:
    return errors.NotFound(message, code=ProblemCode.WEBHOOK_NOT_FOUND)
