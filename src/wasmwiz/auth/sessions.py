"""Web-session tokens and CSRF tokens: generation, hashing and checking. Pure functions."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from wasmwiz.auth.key_derivation import Purpose, derive_key

_TOKEN_BYTES = 32


def generate_session_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def hash_session_token(token: str) -> str:
    """SHA-256 of the token: what the database stores and looks sessions up by.

    The token has 256 bits of entropy, so an unkeyed fast hash cannot be reversed, and a
    copy of the table alone yields no cookie that would be accepted.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(basis: str, secret: str) -> str:
    """The CSRF token for a browser: an HMAC of its session (or pre-session) cookie.

    Bound to the cookie, so a token seen by another visitor is useless to an attacker,
    and it changes when someone signs in. Nothing needs storing server-side. Keyed by the
    CSRF key derived from `secret` (SECRET_KEY), never by the secret itself.
    """
    key = derive_key(secret, Purpose.CSRF)
    return hmac.new(key, b"csrf:" + basis.encode(), hashlib.sha256).hexdigest()


def check_csrf_token(basis: str, candidate: str | None, secret: str) -> bool:
    if not basis or not candidate:
        return False
    return hmac.compare_digest(csrf_token(basis, secret), candidate)
