"""`X-Profile`: an administrator's key gets a pyinstrument report of its request; no one
else's header changes anything, and production leaves it off."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from tests.api import wat
from tests.api.test_admin_api import create_admin
from tests.api.test_rate_limits import wait_until_running
from tests.fixtures.app import Account, LiveServer, ServerFactory
from wasmwiz.config import load_settings
from wasmwiz.http_common.profiling import requested_format

pytestmark = pytest.mark.anyio


async def test_an_administrator_gets_a_report_of_a_real_execution(
    client: httpx.AsyncClient, migrated_database_url: str
) -> None:
    admin = await create_admin(migrated_database_url)

    html = await client.post(
        "/api/v1/execute",
        headers={**admin.headers, "X-Profile": "1"},
        files={"wasm": ("hello.wat", wat.HELLO.encode())},
    )

    assert html.status_code == 200, html.text
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["x-profiled-status"] == "200"
    assert html.headers["content-disposition"] == 'attachment; filename="profile.html"'
    assert html.headers["cache-control"] == "no-store"
    assert "x-request-id" in html.headers  # the outer middleware still ran
    assert "pyinstrument" in html.text

    text = await client.post(
        "/api/v1/execute",
        headers={**admin.headers, "X-Profile": "text"},
        files={"wasm": ("hello.wat", wat.HELLO.encode())},
    )
    assert text.headers["content-type"].startswith("text/plain")
    # The route's own frames are in it: the request really ran under the profiler.
    assert "execute" in text.text
    assert "Hello, WasmWiz!" not in text.text  # the route's answer is dropped, not attached

    speedscope = await client.get(
        "/api/v1/usage", headers={**admin.headers, "X-Profile": "speedscope"}
    )
    assert speedscope.headers["x-profiled-status"] == "200"
    assert "speedscope" in json.loads(speedscope.text)["$schema"]

    refused = await client.get(
        "/api/v1/jobs/not-a-job", headers={**admin.headers, "X-Profile": "text"}
    )
    assert refused.status_code == 200
    assert refused.headers["x-profiled-status"] in ("404", "422")


async def test_anyone_else_s_header_is_ignored(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    for headers in (
        {**account.headers, "X-Profile": "1"},  # a user's key
        {"X-Profile": "1"},  # no key
        {"Authorization": "Bearer ww_" + "x" * 43, "X-Profile": "1"},  # a wrong key
    ):
        response = await client.post(
            "/api/v1/execute", headers=headers, files={"wasm": ("hello.wat", wat.HELLO.encode())}
        )
        assert "x-profiled-status" not in response.headers
        assert response.headers["content-type"].startswith("application/")
    answered = await client.post(
        "/api/v1/execute",
        headers={**account.headers, "X-Profile": "1"},
        files={"wasm": ("hello.wat", wat.HELLO.encode())},
    )
    assert answered.json()["output"] == "Hello, WasmWiz!\n"

    # An administrator's key without the admin scope is not enough, nor an unknown format.
    admin = await create_admin(migrated_database_url)
    created = await client.post(
        "/api/v1/keys",
        headers=admin.headers,
        json={"name": "runner", "scopes": ["execute", "usage:read"]},
    )
    runner = {"Authorization": f"Bearer {created.json()['key']}"}
    for headers in ({**runner, "X-Profile": "1"}, {**admin.headers, "X-Profile": "flame"}):
        response = await client.get("/api/v1/usage", headers=headers)
        assert response.status_code == 200
        assert "x-profiled-status" not in response.headers


async def test_one_profile_at_a_time(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory(execution_timeout=2.0)
    admin = await create_admin(migrated_database_url)
    profiled = {**admin.headers, "X-Profile": "text"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        slow = asyncio.ensure_future(
            client.post(
                "/api/v1/execute",
                headers=profiled,
                files={"wasm": ("loop.wat", wat.INFINITE_LOOP.encode())},
            )
        )
        # Running means profiled: the profile began before the route did.
        await wait_until_running(client, 1)
        meanwhile = await client.get("/api/v1/usage", headers=profiled)
        first = await slow
    assert first.headers["x-profiled-status"] == "200"  # a run that timed out is a 200
    assert meanwhile.headers["x-profile-skipped"] == "busy"
    assert meanwhile.headers["content-type"] == "application/json"


def test_on_in_development_off_in_staging_and_production_unless_enabled(tmp_path: Path) -> None:
    production = {
        "environment": "production",
        "secret_key": "s" * 48,
        "trusted_proxies": "10.0.0.1",
        "metrics_token": "t" * 32,
        "var_dir": tmp_path,
    }
    assert load_settings(var_dir=tmp_path).profiling_active
    assert not load_settings(var_dir=tmp_path, environment="staging").profiling_active
    assert not load_settings(**production).profiling_active
    assert load_settings(**production, profiling_enabled=True).profiling_active
    assert not load_settings(var_dir=tmp_path, profiling_enabled=False).profiling_active


async def test_with_profiling_off_the_header_changes_nothing(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server: LiveServer = server_factory(profiling_enabled=False)
    admin = await create_admin(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.get("/api/v1/usage", headers={**admin.headers, "X-Profile": "1"})
    assert response.status_code == 200
    assert "x-profiled-status" not in response.headers
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("value", "report"),
    [
        ("1", "html"),
        ("true", "html"),
        (" HTML ", "html"),
        ("text", "text"),
        ("speedscope", "speedscope"),
        ("0", None),
        ("flame", None),
        (None, None),
    ],
)
def test_the_header_names_a_report(value: str | None, report: str | None) -> None:
    assert requested_format(value) == report
