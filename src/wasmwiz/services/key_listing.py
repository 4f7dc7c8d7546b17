"""One page of a user's API keys with each key's status, for the web page and the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import ApiKey
from wasmwiz.services.api_keys import ApiKeyService, key_status

MAX_PER_PAGE = 100


@dataclass(frozen=True, slots=True)
class ListedKey:
    key: ApiKey
    status: str


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[ListedKey]
    page: int
    per_page: int
    has_next: bool


async def list_key_page(
    api_keys: ApiKeyService,
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    page: int,
    per_page: int,
    now: datetime | None = None,
) -> KeyPage:
    """Newest first; one extra row is read to learn whether a next page exists."""
    page = max(page, 1)
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    rows = await api_keys.list_for_user(
        session, user_id, limit=per_page + 1, offset=(page - 1) * per_page
    )
    moment = now or datetime.now(UTC)
    return KeyPage(
        keys=[ListedKey(key, key_status(key, moment)) for key in rows[:per_page]],
        page=page,
        per_page=per_page,
        has_next=len(rows) > per_page,
    )
