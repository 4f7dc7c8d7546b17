"""Credentials: API keys, passwords, web sessions and CSRF tokens. Pure functions."""

from wasmwiz.auth.api_keys import (
    API_KEY_PREFIX,
    GeneratedApiKey,
    HashScheme,
    candidate_hashes,
    generate_api_key,
    hash_api_key,
    is_well_formed_api_key,
)
from wasmwiz.auth.key_derivation import Purpose, derive_key
from wasmwiz.auth.passwords import PasswordHasher, check_password_rules
from wasmwiz.auth.sessions import (
    check_csrf_token,
    csrf_token,
    generate_session_token,
    hash_session_token,
)

__all__ = [
    "API_KEY_PREFIX",
    "GeneratedApiKey",
    "HashScheme",
    "PasswordHasher",
    "Purpose",
    "candidate_hashes",
    "check_csrf_token",
    "check_password_rules",
    "csrf_token",
    "derive_key",
    "generate_api_key",
    "generate_session_token",
    "hash_api_key",
    "hash_session_token",
    "is_well_formed_api_key",
]
