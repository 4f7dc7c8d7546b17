"""API keys: `ww_` + 43 URL-safe characters (32 random bytes), stored only as an HMAC."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "ww_"
_RANDOM_BYTES = 32
_DISPLAY_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
# token_urlsafe(32) yields 43 characters; accept longer keys so the length can grow later.
_WELL_FORMED = re.compile(r"^ww_[A-Za-z0-9_-]{43,128}$")


@dataclass(frozen=True, slots=True)
class GeneratedApiKey:
    plaintext: str
    display_prefix: str
    digest: str


def generate_api_key(secret: str) -> GeneratedApiKey:
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
    return GeneratedApiKey(
        plaintext=plaintext,
        display_prefix=plaintext[:_DISPLAY_PREFIX_LENGTH],
        digest=hash_api_key(plaintext, secret),
    )


def hash_api_key(plaintext: str, secret: str) -> str:
    """HMAC-SHA256 under the server secret.

    Keys carry 256 bits of entropy, so a fast keyed hash is enough (a slow password hash
    would only cost latency on every request), and the secret means a leaked database
    alone does not let anyone test guesses. The hex digest is what the unique index holds,
    so authentication is one indexed equality lookup.
    """
    return hmac.digest(secret.encode(), plaintext.encode(), hashlib.sha256).hex()


def is_well_formed_api_key(candidate: str) -> bool:
    return _WELL_FORMED.fullmatch(candidate) is not None
