"""SECRET_KEY, API_SALT as its old name, and the development secret kept under VAR_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmwiz.config import ConfigurationError, load_settings

SECRET = "s" * 48


@pytest.fixture(autouse=True)
def no_secret_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SECRET_KEY", "API_SALT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize("name", ["SECRET_KEY", "API_SALT"])
def test_either_name_sets_the_one_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    monkeypatch.setenv(name, SECRET)
    settings = load_settings(var_dir=tmp_path / "var")

    assert settings.secret_key == settings.api_salt == SECRET
    assert not (tmp_path / "var" / "api_salt").exists()


def test_both_names_with_the_same_value_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("API_SALT", SECRET)

    assert load_settings().secret_key == SECRET


def test_both_names_with_different_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("API_SALT", "t" * 48)

    with pytest.raises(ConfigurationError, match="SECRET_KEY and API_SALT"):
        load_settings()


def test_the_development_secret_file_keeps_working(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    # As every earlier release wrote it.
    (var_dir / "api_salt").write_text("an-existing-development-secret\n")

    settings = load_settings(var_dir=var_dir)

    assert settings.secret_key == settings.api_salt == "an-existing-development-secret"


def test_a_missing_development_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_settings(var_dir=tmp_path / "var")
    second = load_settings(var_dir=tmp_path / "var")

    assert len(first.secret_key) >= 32
    assert second.secret_key == first.secret_key
    assert (tmp_path / "var" / "api_salt").stat().st_mode & 0o777 == 0o600


def test_production_names_the_new_setting_and_the_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")

    with pytest.raises(ConfigurationError, match=r"SECRET_KEY \(or its old name API_SALT\)"):
        load_settings()
