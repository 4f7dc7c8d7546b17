"""Who is asking: the authenticated caller and the limits of their tier."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TierLimits:
    name: str
    requests_per_minute: int
    requests_per_day: int
    max_concurrent_executions: int
    max_fuel: int | None


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    email: str
    tier: TierLimits
    api_key_id: uuid.UUID | None = None

    @property
    def rate_limit_key(self) -> str:
        """Limits apply per API key; runs from the web pages count against the user."""
        if self.api_key_id is not None:
            return f"key:{self.api_key_id}"
        return f"user:{self.user_id}"
