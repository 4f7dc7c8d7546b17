"""API keys: `ww_` + 43 URL-safe characters (32 random bytes), stored only as an HMAC."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import IntEnum

from wasmwiz.auth.key_derivation import Purpose, derive_key

API_KEY_PREFIX = "ww_"
_RANDOM_BYTES = 32
_DISPLAY_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8
# token_urlsafe(32) yields 43 characters; accept longer keys so the length can grow later.
_WELL_FORMED = re.compile(r"^ww_[A-Za-z0-9_-]{43,128}$")


class HashScheme(IntEnum):
    """How a stored key hash was made (`api_keys.hash_scheme`)."""

    # HMAC-SHA256 under the configured secret itself: every key made up to 0.1.0, and
    # what API_KEY_HASH_SCHEME=1 keeps writing while a rolling upgrade from 0.1.0 may
    # still need rolling back (docs/api-keys.md). Always accepted.
    LEGACY = 1
    # HMAC-SHA256 under the key derived for this purpose alone (key_derivation).
    DERIVED = 2


@dataclass(frozen=True, slots=True)
class GeneratedApiKey:
    plaintext: str
    display_prefix: str
    digest: str
    hash_scheme: HashScheme = HashScheme.DERIVED


def generate_api_key(secret: str, scheme: HashScheme = HashScheme.DERIVED) -> GeneratedApiKey:
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
    return GeneratedApiKey(
        plaintext=plaintext,
        display_prefix=plaintext[:_DISPLAY_PREFIX_LENGTH],
        digest=hash_api_key(plaintext, secret, scheme),
        hash_scheme=scheme,
    )


def hash_api_key(plaintext: str, secret: str, scheme: HashScheme = HashScheme.DERIVED) -> str:
    """HMAC-SHA256 under a key from the server secret (`secret` is SECRET_KEY itself).

    Keys carry 256 bits of entropy, so a fast keyed hash is enough (a slow password hash
    would only cost latency on every request), and the key means a leaked database
    alone does not let anyone test guesses. The hex digest is what the unique index holds,
    so authentication is one indexed equality lookup.
    """
    if scheme is HashScheme.LEGACY:
        key = secret.encode()
    else:
        key = derive_key(secret, Purpose.API_KEY_HASH)
    return hmac.digest(key, plaintext.encode(), hashlib.sha256).hex()


def candidate_hashes(
    plaintext: str, secret: str, current: HashScheme = HashScheme.DERIVED
) -> dict[str, HashScheme]:
    """Each digest `plaintext` may be stored under, with its scheme (`current` first)."""
    schemes = sorted(HashScheme, key=lambda scheme: scheme != current)
    return {hash_api_key(plaintext, secret, scheme): scheme for scheme in schemes}


def is_well_formed_api_key(candidate: str) -> bool:
    return _WELL_FORMED.fullmatch(candidate) is not None
