"""Production mode: unsafe settings refused at start-up; internal errors show no internals."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import TEST_SALT, make_settings, start_server
from wasmwiz.config import ENV_FILE, ConfigurationError, load_settings
from wasmwiz.persistence.migrate import upgrade

SAFE = {
    "environment": "production",
    "api_salt": TEST_SALT,
    "database_url": "postgresql://db/x",
    "trusted_proxies": "10.20.0.0/26",
    "metrics_token": "a-scrape-token",
}
# Several workers need limits they share (docs/performance.md: the worker model).
SHARED_LIMITS = {"rate_limit_backend": "redis", "redis_url": "redis://127.0.0.1:6379/0"}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"api_salt": ""}, "API_SALT"),
        ({"api_salt": "change-me-to-a-long-random-secret-value-please"}, "API_SALT"),
        ({"debug": True}, "DEBUG"),
        ({"database_url": "", "workers": 4}, "SQLite"),
        ({"trusted_proxies": "10.0.0.0/8, proxy.internal"}, "TRUSTED_PROXIES"),
        ({"tls_certfile": "/etc/cert.pem"}, "TLS_KEYFILE"),
        # Session cookies would lose Secure behind a TLS proxy that is not trusted.
        ({"trusted_proxies": ""}, "TRUSTED_PROXIES"),
        # /metrics open to anyone.
        ({"metrics_token": ""}, "METRICS_TOKEN"),
    ],
)
def test_unsafe_production_settings_are_refused(
    tmp_path: Path, overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        load_settings(var_dir=tmp_path, **{**SAFE, **overrides})


def test_safe_production_settings_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(var_dir=tmp_path, workers=4, **SAFE, **SHARED_LIMITS)
    assert settings.is_production
    assert settings.workers == 4


@pytest.mark.parametrize(
    "overrides",
    [
        {"trusted_proxies": "", "tls_certfile": "/etc/cert.pem", "tls_keyfile": "/etc/key.pem"},
        {"metrics_token": "", "metrics_port": 9090},
    ],
    ids=["tls-instead-of-a-proxy", "metrics-port-instead-of-a-token"],
)
def test_the_alternatives_are_accepted(tmp_path: Path, overrides: dict[str, object]) -> None:
    assert load_settings(var_dir=tmp_path, **{**SAFE, **overrides}).is_production


def test_serve_refuses_to_start_naming_the_setting(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "API_SALT": TEST_SALT,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "VAR_DIR": str(tmp_path),
        "METRICS_TOKEN": "a-scrape-token",
        "TRUSTED_PROXIES": "",
    }
    command = [sys.executable, "-m", "wasmwiz.cli.main", "serve", "--port", "1"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "TRUSTED_PROXIES" in refused.stderr
    env |= {"TRUSTED_PROXIES": "10.20.0.0/26", "METRICS_TOKEN": ""}
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "METRICS_TOKEN" in refused.stderr


def test_the_same_settings_are_fine_in_development(tmp_path: Path) -> None:
    settings = load_settings(var_dir=tmp_path, debug=True, workers=4, **SHARED_LIMITS)
    assert settings.debug


def test_an_internal_error_in_production_shows_no_trace_or_path(tmp_path: Path) -> None:
    # A table gone behind the migrations' back (a database without its schema is refused
    # at start-up): authenticating the key fails deep in SQLAlchemy.
    database = tmp_path / "broken.db"
    upgrade(f"sqlite:///{database}")
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("DROP TABLE api_keys")
        connection.commit()
    server = start_server(
        make_settings(
            tmp_path,
            f"sqlite:///{database}",
            environment="production",
            trusted_proxies="127.0.0.1",
            metrics_token="a-scrape-token",
        )
    )
    try:
        response = httpx.post(
            f"{server.url}/api/v1/execute",
            headers={"Authorization": "Bearer ww_" + "a" * 43},
            files={"wasm": ("m.wat", b"(module)")},
        )
    finally:
        server.stop()
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "internal_error"
    assert set(body) == {"type", "title", "status", "detail", "code", "instance", "request_id"}
    text = response.text
    for leak in ("Traceback", "sqlalchemy", "no such table", str(tmp_path), ".py", "File "):
        assert leak not in text, leak


def test_env_example_loads_as_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[2] / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env_file=ENV_FILE)
    assert settings.metrics_port is None
    assert settings.tls_certfile is None
    assert not settings.tls_enabled
    # The module, stdin, the input files with their parts' framing, and 1 MiB of room.
    assert settings.effective_max_request_body_size == (10 + 1 + 16 + 1) * 1024 * 1024 + 1000 * 512


def test_only_the_commands_read_a_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's .env must not leak into tests or an embedding app: only the commands
    # (`wasmwiz serve` and the rest) name the file.
    (tmp_path / ".env").write_text("LOG_LEVEL=DEBUG\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    assert load_settings(var_dir=tmp_path / "var").log_level == "INFO"
    assert load_settings(var_dir=tmp_path / "var", env_file=ENV_FILE).log_level == "DEBUG"
