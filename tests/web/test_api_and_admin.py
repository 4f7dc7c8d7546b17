"""The JSON key and usage API, the playground's upload path, and the admin page."""

from __future__ import annotations

import asyncio
import base64
import hashlib
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


@pytest.mark.parametrize("method", ["DELETE", "GET", "PUT", "PATCH"])
async def test_revoke_all_takes_post_only(
    client: httpx.AsyncClient, account: Account, method: str
) -> None:
    # DELETE matched `/api/v1/keys/{key_id}` and was a 422 for the key id "revoke-all".
    for headers in ({}, account.headers):
        response = await client.request(method, "/api/v1/keys/revoke-all", headers=headers)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "method_not_allowed"
    assert (await client.get("/api/v1/keys", headers=account.headers)).status_code == 200
    # A key id that is not one is still the request's fault, after authentication.
    malformed = await client.delete("/api/v1/keys/not-a-key-id", headers=account.headers)
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "invalid_request"
    assert (await client.delete("/api/v1/keys/not-a-key-id")).status_code == 401


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
        # No fuel budget: not metered, which the page shows as such.
        assert run.json()["fuel_consumed"] is None
        assert run.json()["fuel_consumed_is_lower_bound"] is False
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
        from_keys = [run for run in usage["recent"] if run["via_api_key"]]
        assert {run["api_key_name"] for run in from_keys} == {"script"}

        page = await http.get("/usage")
        assert page.status_code == 200
        assert page.text.count("badge-success") >= 3
        assert "shared by all your keys and the playground" in page.text
        assert "per key" not in page.text
        assert page.text.count("API key “script”") == 2


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


COPY = Path(__file__).parents[1] / "sandbox" / "fixtures" / "files" / "copy.wasm"


async def test_upload_takes_files_and_collect_and_returns_what_the_run_wrote(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())
        token = await page_csrf(http, "/")
        headers = {"X-CSRF-Token": token, "Accept": "application/json"}
        payload = bytes(range(256))
        run = await http.post(
            "/upload",
            headers=headers,
            files=[("wasm", ("copy.wasm", COPY.read_bytes())), ("files", ("in.txt", payload))],
            data={"collect": '["out/*"]'},
        )
        refused = await http.post(
            "/upload",
            headers=headers,
            files=[("wasm", ("copy.wasm", COPY.read_bytes())), ("files", ("../x", b""))],
        )
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["stdout"]["text"] == "copied 256 bytes\n"
    assert body["files"] == [
        {
            "path": "out/in.txt",
            "size": 256,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "content": base64.b64encode(payload).decode("ascii"),
        }
    ]
    assert body["files_truncated"] is False
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_file_path"


async def test_upload_refusals_are_problem_details(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        # No session and no token: refused by the CSRF check every page POST passes first.
        anonymous = await http.post(
            "/upload", headers={"Accept": "application/json"}, files={"wasm": ("m.wat", b"x")}
        )
        assert anonymous.status_code == 403
        assert anonymous.json()["code"] == "csrf_failed"
        # A session that has ended (its page's token no longer matches): sign in again.
        ended = await http.post(
            "/upload",
            headers={
                "X-CSRF-Token": "0" * 64,
                "Accept": "application/json",
                "Cookie": "wasmwiz_session=a-session-that-has-ended",
            },
            files={"wasm": ("m.wat", b"x")},
        )
        assert ended.status_code == 401
        assert ended.json()["code"] == "unauthorized"
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
        httpx.AsyncClient(base_url=server.url, timeout=30) as admin,
        httpx.AsyncClient(base_url=server.url, timeout=30) as user,
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


async def web_key(http: httpx.AsyncClient, **form: object) -> str:
    """Create a key on the keys page; the new key, from the page that shows it once."""
    response = await http.post("/generate-key", data=form)
    if response.status_code == 303:
        response = await http.get(response.headers["location"])
    assert response.status_code == 200, response.text
    return response.text.split('id="new-key" class="code" type="text" readonly value="')[1][:46]


async def test_the_playground_and_every_key_share_the_accounts_budget(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())  # free tier: 10 runs a minute, per account
        token = await page_csrf(http, "/")
        for _ in range(4):
            played = await http.post(
                "/upload",
                headers={"X-CSRF-Token": token, "Accept": "application/json"},
                files={"wasm": ("hello.wat", wat.HELLO.encode())},
            )
            assert played.status_code == 200
        keys = [await web_key(http, name=f"k{n}", csrf_token=token) for n in range(2)]
        statuses = []
        for n in range(8):
            response = await http.post(
                "/api/v1/execute",
                headers={"Authorization": f"Bearer {keys[n % 2]}"},
                files={"wasm": ("m.wat", wat.HELLO.encode())},
            )
            statuses.append(response.status_code)
        assert statuses == [200] * 6 + [429] * 2
        assert response.json()["limit"] == "account"


async def test_keys_page_chooses_scopes_and_limits_and_revokes_every_key(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())
        token = await page_csrf(http)
        page = (await http.get("/api-keys")).text
        assert 'value="keys:write"' in page
        assert 'value="admin"' not in page  # not an administrator
        made = await web_key(
            http, name="runner", scopes=["execute"], requests_per_minute="2", csrf_token=token
        )
        runner = {"Authorization": f"Bearer {made}"}
        assert (await http.get("/api/v1/usage", headers=runner)).status_code == 403
        for expected in (200, 200, 429):
            response = await http.post(
                "/api/v1/execute", headers=runner, files={"wasm": ("m.wat", wat.HELLO.encode())}
            )
            assert response.status_code == expected
        assert response.json()["limit"] == "key"
        too_high = await http.post(
            "/generate-key",
            data={"name": "x", "requests_per_minute": "11", "csrf_token": token},
        )
        assert too_high.status_code == 400
        assert "at most" in too_high.text or "from 1 to" in too_high.text
        other = {"Authorization": f"Bearer {await web_key(http, name='other', csrf_token=token)}"}
        assert (await http.get("/api/v1/usage", headers=other)).status_code == 200

        done = await http.post("/api-keys/revoke-all", data={"csrf_token": token})
        assert done.status_code == 303
        assert "Every key is revoked" in (await http.get(done.headers["location"])).text
        for headers in (runner, other):
            response = await http.post(
                "/api/v1/execute", headers=headers, files={"wasm": ("m.wat", wat.HELLO.encode())}
            )
            assert response.status_code == 401


async def test_admin_page_creates_and_edits_tiers_and_deletes_users(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as admin,
        httpx.AsyncClient(base_url=server.url, timeout=30) as user,
    ):
        admin_email, user_email = new_email(), new_email()
        await sign_up(admin, admin_email)
        await sign_up(user, user_email)
        await make_admin(migrated_database_url, admin_email)
        token = await page_csrf(admin, "/admin")
        limits = {
            "requests_per_minute": "3",
            "requests_per_day": "50",
            "max_concurrent_executions": "1",
            "max_fuel": "",
            "max_api_keys": "2",
        }
        forged = await user.post(
            "/admin/tiers", data={"name": "team", **limits, "csrf_token": await page_csrf(user)}
        )
        assert forged.status_code == 403
        created = await admin.post(
            "/admin/tiers", data={"name": "team", **limits, "csrf_token": token}
        )
        assert created.status_code == 303
        page = (await admin.get("/admin")).text
        assert 'action="/admin/tiers/team"' in page
        user_id = page.split(f"{user_email}")[1].split("/admin/users/")[1].split("/")[0]
        moved = await admin.post(
            f"/admin/users/{user_id}/tier", data={"tier": "team", "csrf_token": token}
        )
        assert moved.status_code == 303

        user_token = await page_csrf(user, "/")
        run = await user.post(
            "/upload",
            headers={"X-CSRF-Token": user_token, "Accept": "application/json"},
            files={"wasm": ("hello.wat", wat.HELLO.encode())},
        )
        assert run.headers["X-RateLimit-Limit"] == "3"
        edited = await admin.post(
            "/admin/tiers/team", data={**limits, "requests_per_minute": "7", "csrf_token": token}
        )
        assert edited.status_code == 303
        run = await user.post(
            "/upload",
            headers={"X-CSRF-Token": user_token, "Accept": "application/json"},
            files={"wasm": ("hello.wat", wat.HELLO.encode())},
        )
        assert run.headers["X-RateLimit-Limit"] == "7"
        bad = await admin.post(
            "/admin/tiers/team", data={**limits, "requests_per_minute": "0", "csrf_token": token}
        )
        assert bad.status_code == 400

        deleted = await admin.post(f"/admin/users/{user_id}/delete", data={"csrf_token": token})
        assert deleted.status_code == 303
        assert (await user.get("/usage")).status_code == 303  # signed out
        assert (await log_in(user, user_email)).status_code != 303
        assert user_email not in (await admin.get("/admin")).text


async def test_revoking_a_revoked_key_on_the_page_says_so(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())
        token = await page_csrf(http)
        await web_key(http, name="once", csrf_token=token)
        listed = (await http.get("/api-keys")).text
        key_id = listed.split('action="/api-keys/')[1].split("/revoke")[0]
        first = await http.post(f"/api-keys/{key_id}/revoke", data={"csrf_token": token})
        assert "The key is revoked" in (await http.get(first.headers["location"])).text
        again = await http.post(f"/api-keys/{key_id}/revoke", data={"csrf_token": token})
        assert "revoked already" in (await http.get(again.headers["location"])).text
