"""Who is asking: the authenticated caller and the limits of their tier."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


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
    # Limits apply per API key; runs from the web pages count against the user. Worked
    # out once: the gate asks for it several times a request.
    rate_limit_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = f"key:{self.api_key_id}" if self.api_key_id is not None else f"user:{self.user_id}"
        object.__setattr__(self, "rate_limit_key", key)
