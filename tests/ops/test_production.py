"""Production mode: unsafe settings refused at start-up; internal errors show no internals."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import TEST_SALT, make_settings, start_server
from wasmwiz.config import ConfigurationError, load_settings

SAFE = {"environment": "production", "api_salt": TEST_SALT, "database_url": "postgresql://db/x"}
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


def test_the_same_settings_are_fine_in_development(tmp_path: Path) -> None:
    settings = load_settings(var_dir=tmp_path, debug=True, workers=4, **SHARED_LIMITS)
    assert settings.debug


def test_an_internal_error_in_production_shows_no_trace_or_path(tmp_path: Path) -> None:
    # A database without its schema: authenticating the key fails deep in SQLAlchemy.
    database = tmp_path / "unmigrated.db"
    server = start_server(
        make_settings(tmp_path, f"sqlite:///{database}", environment="production")
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
    settings = load_settings()
    assert settings.metrics_port is None
    assert settings.tls_certfile is None
    assert not settings.tls_enabled
    assert settings.effective_max_request_body_size == 12 * 1024 * 1024
