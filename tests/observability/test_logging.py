"""Production logs: JSON lines, one access line per request, security events, no keys."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api import wat
from tests.fixtures.app import Account
from tests.ops.process import serve_process

pytestmark = pytest.mark.slow


def test_production_logs_are_json_lines_with_access_and_security_events(
    tmp_path: Path, migrated_database_url: str, ops_account: Account
) -> None:
    log_file = tmp_path / "stdout.log"
    env = {
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "INFO",
        # Production refuses to start without these (tests/ops/test_production.py).
        "TRUSTED_PROXIES": "127.0.0.1",
        "METRICS_TOKEN": "a-scrape-token",
    }
    with serve_process(tmp_path, migrated_database_url, env=env, stdout=log_file) as (
        process,
        url,
    ):
        ran = httpx.post(
            f"{url}/api/v1/execute",
            headers={**ops_account.headers, "X-Request-ID": "trace-42.a"},
            files={"wasm": ("hello.wat", wat.HELLO.encode())},
        )
        assert ran.headers["x-request-id"] == "trace-42.a"
        refused = httpx.post(
            f"{url}/api/v1/execute",
            headers={"Authorization": "Bearer ww_not-a-real-key", "X-Request-ID": "bad id!"},
        )
        generated = refused.headers["x-request-id"]
        assert generated != "bad id!"
        assert len(generated) == 32  # an unsafe id is replaced, not echoed
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    text = log_file.read_text()
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines() if line]
    access = {line["request_id"]: line for line in lines if line.get("event") == "access"}
    assert access["trace-42.a"] | {"duration_ms": 0} == access["trace-42.a"] | {
        "level": "info",
        "logger": "wasmwiz.access",
        "method": "POST",
        "route": "/api/v1/execute",
        "status": 200,
        "key_id": str(ops_account.api_key_id),
        "client": "127.0.0.1",
        "scheme": "http",
        "duration_ms": 0,
    }
    assert access[generated]["status"] == 401
    assert access[generated]["key_id"] is None
    assert any(line.get("event") == "auth_failure" for line in lines)
    # Neither the key nor its secret part ever reaches the logs.
    assert ops_account.api_key not in text
    assert ops_account.api_key.removeprefix("ww_") not in text
