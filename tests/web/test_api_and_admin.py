"""The JSON key and usage API, the playground's upload path, and the admin page."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests.api import wat
from tests.fixtures.app import Account, LiveServer, ServerFactory, create_account
from tests.web.helpers import log_in, make_admin, new_email, page_csrf, sign_up
from wasmwiz.persistence import Database
from wasmwiz.services.accounts import AccountService

pytestmark = pytest.mark.anyio


async def test_keys_api_creates_lists_pages_and_revokes(
    client: httpx.AsyncClient, account: Account
) -> None:
    created = []
    for number in range(3):
        response = await client.post(
            "/api/v1/keys", headers=account.headers, json={"name": f"k{number}"}
        )
        assert response.status_code == 201, response.text
        assert response.headers["cache-control"] == "no-store"
        created.append(response.json())
    assert all(key["key"].startswith(key["prefix"]) for key in created)

    first = (await client.get("/api/v1/keys?per_page=2", headers=account.headers)).json()
    assert [key["name"] for key in first["items"]] == ["k2", "k1"]
    assert first["next_page"] == 2
    assert "key" not in first["items"][0]
    second = (await client.get("/api/v1/keys?per_page=2&page=2", headers=account.headers)).json()
    assert [key["name"] for key in second["items"]] == ["k0", "test"]
    assert second["next_page"] is None

    gone = await client.delete(f"/api/v1/keys/{created[0]['id']}", headers=account.headers)
    assert gone.status_code == 204
    refused = await client.get(
        "/api/v1/keys", headers={"Authorization": f"Bearer {created[0]['key']}"}
    )
    assert refused.status_code == 401
    listed = (await client.get("/api/v1/keys", headers=account.headers)).json()["items"]
    assert {key["name"]: key["status"] for key in listed}["k0"] == "revoked"


async def test_keys_api_touches_only_the_callers_keys(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    other = await create_account(migrated_database_url)
    response = await client.delete(f"/api/v1/keys/{other.api_key_id}", headers=account.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert (await client.get("/api/v1/keys", headers=other.headers)).status_code == 200
    listed = (await client.get("/api/v1/keys", headers=account.headers)).json()["items"]
    assert [key["id"] for key in listed] == [str(account.api_key_id)]


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x" * 101}, {"name": "x", "expires_at": "2000-01-01T00:00:00Z"}],
)
async def test_keys_api_refuses_bad_input_with_problem_details(
    client: httpx.AsyncClient, account: Account, body: dict[str, str]
) -> None:
    response = await client.post("/api/v1/keys", headers=account.headers, json=body)
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] in ("invalid_request", "invalid_expiry")


async def wait_for_usage(client: httpx.AsyncClient, headers: dict[str, str], total: int) -> dict:
    for _ in range(200):
        usage = (await client.get("/api/v1/usage", headers=headers)).json()
        if usage["total"] >= total:
            return usage
        await asyncio.sleep(0.05)
    raise AssertionError(f"usage never reached {total}: {usage}")


async def test_usage_api_reports_runs_from_keys_and_the_playground(
    live_server: LiveServer, migrated_database_url: str
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        email = new_email()
        await sign_up(http, email)
        token = await page_csrf(http, "/")
        run = await http.post(
            "/upload",
            headers={"X-CSRF-Token": token, "Accept": "application/json"},
            files={"wasm": ("hello.wat", wat.HELLO.encode())},
        )
        assert run.status_code == 200, run.text
        assert run.json()["stdout"]["text"] == "Hello, WasmWiz!\n"
        key = (await http.post("/generate-key", data={"name": "script", "csrf_token": token})).text
        plaintext = key.split('id="new-key" class="code" type="text" readonly value="')[1][:46]
        headers = {"Authorization": f"Bearer {plaintext}"}
        for module in (wat.HELLO, wat.HELLO):
            api_run = await http.post(
                "/api/v1/execute", headers=headers, files={"wasm": ("m.wat", module.encode())}
            )
            assert api_run.status_code == 200

        usage = await wait_for_usage(http, headers, 3)
        assert usage["today"] == 3
        assert usage["outcomes"] == {"success": 3}
        assert len(usage["days"]) == 30
        assert usage["days"][-1]["executions"] == 3
        assert sorted(run["via_api_key"] for run in usage["recent"]) == [False, True, True]
        assert usage["median_duration_ms"] <= usage["p95_duration_ms"]
        assert usage["daily_quota"] == 500
        assert usage["tier"] == "free"

        page = await http.get("/usage")
        assert page.status_code == 200
        assert page.text.count("badge-success") >= 3


async def test_playground_runs_count_against_the_users_tier(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())  # free tier: 10 runs a minute
        token = await page_csrf(http, "/")
        statuses = []
        for _ in range(11):
            response = await http.post(
                "/upload",
                headers={"X-CSRF-Token": token, "Accept": "application/json"},
                files={"wasm": ("hello.wat", wat.HELLO.encode())},
            )
            statuses.append(response.status_code)
        assert statuses == [200] * 10 + [429]
        assert response.json()["code"] == "rate_limited"
        assert "Retry-After" in response.headers


async def test_upload_refusals_are_problem_details(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        anonymous = await http.post(
            "/upload", headers={"Accept": "application/json"}, files={"wasm": ("m.wat", b"x")}
        )
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "unauthorized"
        await sign_up(http, new_email())
        token = await page_csrf(http, "/")
        bad = await http.post(
            "/upload",
            headers={"X-CSRF-Token": token, "Accept": "application/json"},
            files={"wasm": ("m.wat", b"(module")},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["code"] == "invalid_wat"


async def test_user_strings_are_escaped_in_pages(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())
        token = await page_csrf(http)
        evil = '<script>alert("k")</script>'
        page = await http.post("/generate-key", data={"name": evil, "csrf_token": token})
        assert page.status_code == 200
        assert evil not in page.text
        assert "&lt;script&gt;alert(&#34;k&#34;)&lt;/script&gt;" in page.text
        assert page.headers["cache-control"] == "no-store"
        listed = await http.get("/api-keys")
        assert evil not in listed.text


async def test_admin_changes_tiers_and_deactivates_users(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    async with (
        httpx.AsyncClient(base_url=server.url) as admin,
        httpx.AsyncClient(base_url=server.url) as user,
    ):
        admin_email, user_email = new_email(), new_email()
        await sign_up(admin, admin_email)
        await sign_up(user, user_email)
        assert (await user.get("/admin")).status_code == 403
        await make_admin(migrated_database_url, admin_email)

        page = await admin.get("/admin")
        assert page.status_code == 200
        assert user_email in page.text
        user_id = page.text.split(f"{user_email}")[1].split("/admin/users/")[1].split("/")[0]
        uuid.UUID(user_id)
        token = await page_csrf(admin, "/admin")

        # A non-admin cannot use the admin forms even with a valid token of their own.
        forged = await user.post(
            f"/admin/users/{user_id}/tier",
            data={"tier": "pro", "csrf_token": await page_csrf(user)},
        )
        assert forged.status_code == 403

        changed = await admin.post(
            f"/admin/users/{user_id}/tier", data={"tier": "pro", "csrf_token": token}
        )
        assert changed.status_code == 303
        assert "pro" in (await user.get("/account")).text

        off = await admin.post(
            f"/admin/users/{user_id}/active", data={"active": "false", "csrf_token": token}
        )
        assert off.status_code == 303
        assert (await user.get("/usage")).status_code == 303
        assert (await log_in(user, user_email)).status_code == 403

        on = await admin.post(
            f"/admin/users/{user_id}/active", data={"active": "true", "csrf_token": token}
        )
        assert on.status_code == 303
        assert (await log_in(user, user_email)).status_code == 303


def test_the_cli_makes_a_web_account_an_admin(
    migrated_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures.database import run_outside_loop
    from wasmwiz.cli.main import main

    email = new_email()
    run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url, email=email)))
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    assert run_outside_loop(lambda: main(["users", "set-admin", email])) == 0
    assert run_outside_loop(lambda: asyncio.run(is_admin(migrated_database_url, email)))
    assert run_outside_loop(lambda: main(["users", "set-admin", email, "--revoke"])) == 0
    assert not run_outside_loop(lambda: asyncio.run(is_admin(migrated_database_url, email)))
    assert run_outside_loop(lambda: main(["users", "set-admin", new_email()])) == 1


async def is_admin(database_url: str, email: str) -> bool:
    database = Database(database_url)
    try:
        async with database.session() as session:
            return (await AccountService().get_by_email(session, email)).is_admin
    finally:
        await database.dispose()
