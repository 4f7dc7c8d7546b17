"""The keys page's "Revoke selected": the ticked keys revoked together, or none."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.fixtures.app import LiveServer, create_account
from tests.web.helpers import new_email, page_csrf, sign_up
from tests.web.test_api_and_admin import web_key

pytestmark = pytest.mark.anyio

_BOX = re.compile(r'name="ids" value="([0-9a-f-]{36})" form="revoke-selected"')


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_ticked_keys_are_revoked_together_and_the_rest_left_alone(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())
        token = await page_csrf(http)
        plaintexts = [await web_key(http, name=f"k{n}", csrf_token=token) for n in range(3)]
        ids = _BOX.findall((await http.get("/api-keys")).text)
        assert len(ids) == 3  # newest first: k2, k1, k0

        done = await http.post(
            "/api-keys/revoke-selected", data={"ids": ids[:2], "csrf_token": token}
        )

        assert done.status_code == 303
        page = (await http.get(done.headers["location"])).text
        assert "2 keys are revoked" in page
        assert _BOX.findall(page) == ids[2:]  # revoked keys have no box any more
        k2, k1, k0 = reversed(plaintexts)
        for revoked in (k2, k1):
            assert (await http.get("/api/v1/usage", headers=bearer(revoked))).status_code == 401
        assert (await http.get("/api/v1/usage", headers=bearer(k0))).status_code == 200

        # A stale tab's second post: done already, and the page says so.
        again = await http.post(
            "/api-keys/revoke-selected", data={"ids": ids[:2], "csrf_token": token}
        )
        assert again.status_code == 303
        assert (
            "revoked already; nothing changed" in (await http.get(again.headers["location"])).text
        )


async def test_nothing_ticked_or_a_key_not_yours_changes_nothing_and_says_why(
    live_server: LiveServer, migrated_database_url: str
) -> None:
    other = await create_account(migrated_database_url)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())
        token = await page_csrf(http)
        key = await web_key(http, name="mine", csrf_token=token)
        [mine] = _BOX.findall((await http.get("/api-keys")).text)

        empty = await http.post("/api-keys/revoke-selected", data={"csrf_token": token})
        assert empty.status_code == 400
        assert "Tick the keys to revoke first." in empty.text

        foreign = await http.post(
            "/api-keys/revoke-selected",
            data={"ids": [mine, str(other.api_key_id)], "csrf_token": token},
        )
        assert foreign.status_code == 422
        assert "so no key changed" in foreign.text
        assert str(other.api_key_id) in foreign.text
        assert _BOX.findall(foreign.text) == [mine]

        junk = await http.post(
            "/api-keys/revoke-selected", data={"ids": ["junk", mine], "csrf_token": token}
        )
        assert junk.status_code == 400

        assert (await http.get("/api/v1/usage", headers=bearer(key))).status_code == 200
        assert (await http.get("/api/v1/usage", headers=other.headers)).status_code == 200


async def test_revoking_selected_needs_the_csrf_token(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())
        token = await page_csrf(http)
        await web_key(http, name="kept", csrf_token=token)
        [key_id] = _BOX.findall((await http.get("/api-keys")).text)
        refused = await http.post("/api-keys/revoke-selected", data={"ids": [key_id]})
        assert refused.status_code == 403
        assert _BOX.findall((await http.get("/api-keys")).text) == [key_id]
        assert uuid.UUID(key_id)
