"""Webhook secrets, derived rather than stored, and the Standard Webhooks signature.

An endpoint's secret is HMAC-SHA256 under a key derived from SECRET_KEY (Purpose
WEBHOOK_SIGNING) of the endpoint's id and a random salt kept on its row. The database
alone holds nothing that signs: a copy of it without SECRET_KEY forges no webhook, and
there is no ciphertext to keep a key for. A rotation is a new salt. The cost: a new
SECRET_KEY gives every endpoint a new secret (as it invalidates API keys hashed under it),
so rotate the endpoints' secrets after changing it (docs/security.md).

Headers and signature follow the Standard Webhooks specification, through its reference
library: `webhook-id` (the event's id, the same on every attempt and redelivery, so a
receiver can drop a duplicate), `webhook-timestamp` (the attempt's, in seconds) and
`webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SALT_BYTES = 16


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def endpoint_secret(key: bytes, endpoint_id: uuid.UUID, salt: bytes) -> str:
    """An endpoint's signing secret, `whsec_` and 32 bytes in base64."""
    return _secret(key, b"endpoint\0" + endpoint_id.bytes + salt)


def callback_secret(key: bytes, user_id: uuid.UUID, salt: bytes) -> str:
    """The secret that signs an account's job callbacks (salt empty until rotated)."""
    return _secret(key, b"callback\0" + user_id.bytes + salt)


def _secret(key: bytes, message: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(hmac.digest(key, message, hashlib.sha256)).decode()


def message_id(event_id: uuid.UUID) -> str:
    return f"msg_{event_id.hex}"


def signed_headers(secret: str, event_id: uuid.UUID, at: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    msg_id = message_id(event_id)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }
