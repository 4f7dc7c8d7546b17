"""argon2id's cost comes from the settings; a hash made under other costs still verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmwiz.auth import PasswordHasher
from wasmwiz.config import ConfigurationError, load_settings


def test_the_costs_given_are_the_costs_used_and_recorded() -> None:
    cheap = PasswordHasher(time_cost=1, memory_kib=8, parallelism=1)
    stored = cheap.hash("correct horse battery")
    assert "$m=8,t=1,p=1$" in stored
    assert cheap.verify(stored, "correct horse battery")
    assert not cheap.verify(stored, "wrong horse battery")
    assert not cheap.needs_rehash(stored)


def test_a_hash_made_under_other_costs_verifies_and_asks_to_be_made_again() -> None:
    stored = PasswordHasher(time_cost=1, memory_kib=8, parallelism=1).hash("correct horse")
    default = PasswordHasher()
    assert default.verify(stored, "correct horse")
    assert default.needs_rehash(stored)
    assert "$m=65536,t=3,p=4$" in default.hash("correct horse")


def test_less_memory_than_argon2_takes_per_lane_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PASSWORD_HASH_MEMORY_KIB"):
        load_settings(var_dir=tmp_path, password_hash_memory_kib=15, password_hash_parallelism=2)
    settings = load_settings(
        var_dir=tmp_path, password_hash_memory_kib=16, password_hash_parallelism=2
    )
    assert settings.password_hash_memory_kib == 16
