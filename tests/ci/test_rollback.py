"""A rollback's database half (docs/releasing.md): `wasmwiz db downgrade`, then up again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.app import TEST_SALT
from wasmwiz.cli.main import main
from wasmwiz.persistence.migrate import head


def test_db_downgrade_returns_to_the_old_revision_and_upgrade_comes_back(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    migrated_database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("API_SALT", TEST_SALT)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    monkeypatch.chdir(tmp_path)
    newest = head()

    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.startswith(f"{newest} ")
    assert main(["db", "downgrade", "0001"]) == 0
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("0001 ")
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{newest} ")
