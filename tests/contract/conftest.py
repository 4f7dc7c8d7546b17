"""Contract tests run on SQLite: they are about the HTTP surface, not the storage."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wasmwiz.db'}"
