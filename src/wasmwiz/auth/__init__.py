"""Credentials: API-key generation and hashing, password hashing. Pure functions."""

from wasmwiz.auth.api_keys import (
    API_KEY_PREFIX,
    GeneratedApiKey,
    generate_api_key,
    hash_api_key,
    is_well_formed_api_key,
)
from wasmwiz.auth.passwords import PasswordHasher, check_password_rules

__all__ = [
    "API_KEY_PREFIX",
    "GeneratedApiKey",
    "PasswordHasher",
    "check_password_rules",
    "generate_api_key",
    "hash_api_key",
    "is_well_formed_api_key",
]
