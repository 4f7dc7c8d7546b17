"""Password hashing with argon2id, and the rules a new password must meet."""

from __future__ import annotations

import argon2

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def check_password_rules(password: str) -> str | None:
    """Return what is wrong with a new password, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    if password.isspace():
        return "A password cannot be only spaces."
    return None


_DEFAULT = argon2.profiles.RFC_9106_LOW_MEMORY


class PasswordHasher:
    """argon2id; by default RFC 9106's low-memory profile (argon2-cffi's own defaults).

    Each hash records its parameters, so a hash made under other parameters still
    verifies, and `needs_rehash` says when it should be made again under these.
    """

    def __init__(
        self,
        *,
        time_cost: int = _DEFAULT.time_cost,
        memory_kib: int = _DEFAULT.memory_cost,
        parallelism: int = _DEFAULT.parallelism,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
