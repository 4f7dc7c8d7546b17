"""The event types an endpoint may subscribe to, and the payload every delivery carries."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from wasmwiz.errors import InvalidRequest
from wasmwiz.problem_codes import ProblemCode


class EventType(enum.StrEnum):
    JOB_FINISHED = "job.finished"
    """A job ended with a result (`data`: the job, as GET /api/v1/jobs/{id})."""
    JOB_FAILED = "job.failed"
    """A job ended without one (`data`: the job, with its `error`)."""
    QUOTA_WARNING = "quota.warning"
    """The account has used 80 % of its daily quota (at most once a UTC day)."""
    KEY_CREATED = "key.created"
    KEY_REVOKED = "key.revoked"
    ENDPOINT_DISABLED = "endpoint.disabled"
    """One of the account's endpoints was disabled for failing (told to the others)."""


# What a job's callback_url is told: the job's own end.
JOB_EVENTS = frozenset({EventType.JOB_FINISHED, EventType.JOB_FAILED})


def parse_events(values: Iterable[str]) -> frozenset[EventType]:
    """The event types named, at least one; 400 `invalid_webhook_events` otherwise."""
    chosen: set[EventType] = set()
    for value in values:
        try:
            chosen.add(EventType(value))
        except ValueError:
            known = ", ".join(event.value for event in EventType)
            raise InvalidRequest(
                f"Unknown event {value!r}; the events are: {known}.",
                code=ProblemCode.INVALID_WEBHOOK_EVENTS,
            ) from None
    if not chosen:
        raise InvalidRequest("Choose at least one event.", code=ProblemCode.INVALID_WEBHOOK_EVENTS)
    return frozenset(chosen)


def stored_events(column: str) -> frozenset[EventType]:
    """As stored on an endpoint; a type this version does not know is left out."""
    known = {event.value for event in EventType}
    return frozenset(EventType(name) for name in column.split() if name in known)


def format_events(events: Iterable[EventType]) -> str:
    chosen = set(events)
    return " ".join(event.value for event in EventType if event in chosen)


def event_body(event_type: EventType, timestamp: datetime, data: Mapping[str, Any]) -> bytes:
    """The request body: `{"type", "timestamp", "data"}`, as it is stored and signed."""
    body = {"type": event_type.value, "timestamp": timestamp.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
