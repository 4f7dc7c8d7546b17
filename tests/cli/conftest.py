"""The CLI tests' environment: a migrated database, the test secret, a scratch VAR_DIR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.app import TEST_SALT

KEY = re.compile(r"^ww_[A-Za-z0-9_-]{43}$", re.MULTILINE)


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, migrated_database_url: str
) -> Path:
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("API_SALT", TEST_SALT)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.chdir(tmp_path)
    return tmp_path
