"""One key per purpose, derived from the one configured secret (SECRET_KEY) with HKDF.

Each use of the secret gets its own key: HKDF (RFC 5869) with SHA-256, the extract step
under a fixed application salt and the expand step under the purpose's label. The keys
are independent in the sense that matters: knowing one (say, the disk cache's MAC key,
which a compile host could hold) tells nothing about another or about the secret. A new
purpose is a new label here, never the secret itself or another purpose's key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from enum import StrEnum

KEY_BYTES = 32
_SALT = b"wasmwiz key derivation"
_HASH_BYTES = hashlib.sha256().digest_size


class Purpose(StrEnum):
    """What a derived key is for; the value is the HKDF label (never change one)."""

    API_KEY_HASH = "wasmwiz/v1/api-key-hash"
    CSRF = "wasmwiz/v1/csrf"
    ARTIFACT_MAC = "wasmwiz/v1/compiled-artifact-mac"
    RESULT_CACHE = "wasmwiz/v1/result-cache"
    # Webhook endpoints' signing secrets are derived under it (services/webhooks/signing.py).
    WEBHOOK_SIGNING = "wasmwiz/v1/webhook-signing"


@functools.lru_cache(maxsize=32)
def derive_key(secret: str, purpose: Purpose) -> bytes:
    """The 32-byte key for `purpose` under `secret` (cached: it is asked per request)."""
    if not secret:
        raise ValueError("no secret to derive keys from (SECRET_KEY is empty)")
    return hkdf_sha256(secret.encode(), salt=_SALT, info=purpose.value.encode(), length=KEY_BYTES)


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Extract then HKDF-Expand (RFC 5869) with HMAC-SHA256."""
    if not 0 < length <= 255 * _HASH_BYTES:
        raise ValueError(f"HKDF-SHA256 gives 1 to {255 * _HASH_BYTES} bytes, not {length}")
    prk = hmac.digest(salt or bytes(_HASH_BYTES), ikm, hashlib.sha256)
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), hashlib.sha256)
        output += block
        counter += 1
    return output[:length]
