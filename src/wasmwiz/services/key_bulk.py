"""Bulk key calls' items: what each asks, what became of it, and the refusal of them all.

A bulk call is all or nothing. Every item is judged first; if any is refused, the call
changes nothing and says, item by item, what would have happened and what refused it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from wasmwiz.errors import InvalidParameter
from wasmwiz.persistence.models import ApiKey
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.principals import Scope, format_scopes

# The most ids one call takes: a bulk call costs the server a bounded amount of work (one
# locking read, one batched write), and a whole account fits in one call or a few.
MAX_BULK_KEYS = 100


class BulkAction(enum.StrEnum):
    REVOKE = "revoke"
    UPDATE = "update"


class Keep(enum.Enum):
    """A field a bulk update leaves as each key has it."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """What a bulk update sets on every key; `KEEP` leaves a field alone, and None clears
    an expiry (never expires) or a key's own limit (the account's alone)."""

    name: str | Literal[Keep.KEEP] = KEEP
    scopes: frozenset[Scope] | Literal[Keep.KEEP] = KEEP
    expires_at: datetime | Literal[Keep.KEEP] | None = KEEP
    requests_per_minute: int | Literal[Keep.KEEP] | None = KEEP
    requests_per_day: int | Literal[Keep.KEEP] | None = KEEP
    max_concurrent_executions: int | Literal[Keep.KEEP] | None = KEEP

    def columns(self) -> dict[str, object]:
        """The key's columns this sets, with their stored values."""
        values: dict[str, object] = {
            "name": self.name,
            "expires_at": self.expires_at,
            "requests_per_minute": self.requests_per_minute,
            "requests_per_day": self.requests_per_day,
            "max_concurrent_executions": self.max_concurrent_executions,
        }
        if self.scopes is not KEEP:
            values["scopes"] = format_scopes(self.scopes)
        return {column: value for column, value in values.items() if value is not KEEP}


@dataclass(frozen=True, slots=True)
class BulkItem:
    """One id of a bulk call: whether it can be (or was) done, and whether it changed the key.

    `changed` is False for an item that was done already (revoking a revoked key, setting
    what a key has): nothing to change, and no webhook event.
    """

    id: uuid.UUID
    ok: bool
    changed: bool = False
    code: ProblemCode | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "ok": self.ok,
            "changed": self.changed,
            "code": None if self.code is None else str(self.code),
            "detail": self.detail,
        }


# What an item's key says to the action: a refusal (code and sentence), or None to go on.
Refusal = tuple[ProblemCode, str] | None


def judge(
    key_ids: Sequence[uuid.UUID],
    found: Mapping[uuid.UUID, ApiKey],
    *,
    refuse: Callable[[ApiKey], Refusal],
    changes: Callable[[ApiKey], bool],
) -> list[BulkItem]:
    """Each id's item, in the order given. Another account's key is "not found", as an
    unknown id: a bulk call cannot tell whether someone else's key exists."""
    seen: set[uuid.UUID] = set()
    items = []
    for key_id in key_ids:
        key = found.get(key_id)
        if key_id in seen:
            items.append(
                BulkItem(
                    key_id, ok=False, code=ProblemCode.DUPLICATE_ID, detail="This id came earlier."
                )
            )
            continue
        seen.add(key_id)
        if key is None:
            items.append(
                BulkItem(key_id, ok=False, code=ProblemCode.NOT_FOUND, detail="No such API key.")
            )
            continue
        refusal = refuse(key)
        if refusal is not None:
            items.append(BulkItem(key_id, ok=False, code=refusal[0], detail=refusal[1]))
            continue
        items.append(BulkItem(key_id, ok=True, changed=changes(key)))
    return items


def check_count(key_ids: Sequence[uuid.UUID]) -> None:
    if not 1 <= len(key_ids) <= MAX_BULK_KEYS:
        raise InvalidParameter(
            f"A bulk call takes 1 to {MAX_BULK_KEYS} key ids; this one has {len(key_ids)}.",
            code=ProblemCode.INVALID_REQUEST,
        )


def refuse_unless_all_ok(action: BulkAction, items: Sequence[BulkItem]) -> None:
    """The call's refusal, naming the first refused item, if any item was refused."""
    refused = [item for item in items if not item.ok]
    if not refused:
        return
    first = refused[0]
    raise InvalidParameter(
        f"{len(refused)} of {len(items)} items of this bulk {action} were refused, so no key "
        f"changed; the first, {first.id}: {first.detail}",
        code=ProblemCode.BULK_REFUSED,
        extra={"action": str(action), "items": [item.as_dict() for item in items]},
    )
