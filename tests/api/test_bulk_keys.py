"""POST /api/v1/keys/bulk: many keys revoked or updated in one call, all or none."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.test_webhooks import FAST, add_endpoint, client_of, event_types
from tests.api.webhook_receiver import Receiver, running_receiver
from tests.fixtures.app import TEST_SALT, Account, ServerFactory, create_account
from wasmwiz.auth import HashScheme, generate_api_key
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import api_keys as key_repository
from wasmwiz.services.key_bulk import MAX_BULK_KEYS
from wasmwiz.services.principals import Scope

pytestmark = pytest.mark.anyio


async def make_keys(database_url: str, account: Account, count: int) -> list[tuple[str, str]]:
    """`count` more keys of the account as (id, plaintext), past its tier's key cap."""
    made = []
    database = Database(database_url)
    try:
        async with database.writer() as session:
            for number in range(count):
                generated = generate_api_key(TEST_SALT, HashScheme.DERIVED)
                key = key_repository.create(
                    session,
                    user_id=account.user_id,
                    name=f"bulk-{number}",
                    prefix=generated.display_prefix,
                    key_hash=generated.digest,
                    hash_scheme=generated.hash_scheme,
                )
                made.append((str(key.id), generated.plaintext))
            await session.commit()
    finally:
        await database.dispose()
    return made


async def statuses(client: httpx.AsyncClient, account: Account) -> dict[str, str]:
    listed = await client.get("/api/v1/keys?per_page=100", headers=account.headers)
    assert listed.status_code == 200, listed.text
    return {key["id"]: key["status"] for key in listed.json()["items"]}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


def bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


async def test_fifty_keys_revoked_in_one_call_each_then_refused(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    keys = await make_keys(migrated_database_url, account, 50)
    # Each key works, and is cached as working, before the call.
    for _, plaintext in keys:
        assert (await client.get("/api/v1/usage", headers=bearer(plaintext))).status_code == 200
    ids = [key_id for key_id, _ in keys]

    response = await client.post(
        "/api/v1/keys/bulk", headers=account.headers, json={"action": "revoke", "ids": ids}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == "revoke"
    assert body["changed"] == 50
    assert [item["id"] for item in body["items"]] == ids
    assert all(item["ok"] and item["changed"] and item["code"] is None for item in body["items"])
    for _, plaintext in keys:
        refused = await client.get("/api/v1/usage", headers=bearer(plaintext))
        assert refused.status_code == 401
        assert refused.json()["detail"] == "This API key is revoked."
    now = await statuses(client, account)
    assert {now[key_id] for key_id in ids} == {"revoked"}
    assert now[str(account.api_key_id)] == "active"

    again = await client.post(
        "/api/v1/keys/bulk", headers=account.headers, json={"action": "revoke", "ids": ids[:3]}
    )
    assert again.status_code == 200
    assert again.json()["changed"] == 0
    assert [item["ok"] and not item["changed"] for item in again.json()["items"]] == [True] * 3


async def test_one_foreign_id_changes_nothing_and_is_named(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    keys = await make_keys(migrated_database_url, account, 3)
    other = await create_account(migrated_database_url)
    ids = [keys[0][0], keys[1][0], str(other.api_key_id), keys[2][0]]

    response = await client.post(
        "/api/v1/keys/bulk", headers=account.headers, json={"action": "revoke", "ids": ids}
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "bulk_refused"
    assert str(other.api_key_id) in problem["detail"]
    assert problem["action"] == "revoke"
    assert [(item["id"], item["ok"], item["code"]) for item in problem["items"]] == [
        (ids[0], True, None),
        (ids[1], True, None),
        (ids[2], False, "not_found"),
        (ids[3], True, None),
    ]
    # Nothing changed: every key still works, the other account's too.
    for _, plaintext in keys:
        assert (await client.get("/api/v1/usage", headers=bearer(plaintext))).status_code == 200
    assert (await client.get("/api/v1/keys", headers=other.headers)).status_code == 200
    assert set((await statuses(client, account)).values()) == {"active"}


async def test_duplicates_unknown_ids_and_the_calling_key_are_refused_per_item(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    [(key_id, plaintext)] = await make_keys(migrated_database_url, account, 1)
    unknown = str(uuid.uuid4())
    ids = [key_id, key_id, unknown, str(account.api_key_id)]

    response = await client.post(
        "/api/v1/keys/bulk", headers=account.headers, json={"action": "revoke", "ids": ids}
    )

    assert response.status_code == 422, response.text
    codes = [item["code"] for item in response.json()["items"]]
    assert codes == [None, "duplicate_id", "not_found", "current_key"]
    assert (await client.get("/api/v1/usage", headers=bearer(plaintext))).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "revoke", "ids": []}, "body.ids"),
        ({"action": "revoke", "ids": [str(uuid.uuid4())] * (MAX_BULK_KEYS + 1)}, "body.ids"),
        ({"action": "revoke", "ids": ["not-an-id"]}, "body.ids.0"),
        ({"action": "delete", "ids": [str(uuid.uuid4())]}, "body.action"),
        ({"action": "update", "ids": [str(uuid.uuid4())]}, "body"),
        ({"action": "revoke", "ids": [str(uuid.uuid4())], "changes": {"name": "x"}}, "body"),
        ({"action": "update", "ids": [str(uuid.uuid4())], "changes": {"expiry": "x"}}, None),
        ({"action": "update", "ids": [str(uuid.uuid4())], "changes": {"name": None}}, None),
    ],
)
async def test_malformed_and_over_long_calls_are_refused_whole(
    client: httpx.AsyncClient, account: Account, body: dict[str, Any], field: str | None
) -> None:
    response = await client.post("/api/v1/keys/bulk", headers=account.headers, json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_request"
    if field is not None:
        assert field in problem["detail"], problem


async def test_bulk_needs_the_keys_write_scope_and_post(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    reader = await create_account(migrated_database_url, scopes=frozenset({Scope.EXECUTE}))
    body = {"action": "revoke", "ids": [str(reader.api_key_id)]}
    refused = await client.post("/api/v1/keys/bulk", headers=reader.headers, json=body)
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert (await client.post("/api/v1/keys/bulk", json=body)).status_code == 401
    wrong_method = await client.delete("/api/v1/keys/bulk", headers=account.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


async def test_update_sets_the_changes_on_every_key_at_once(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    keys = await make_keys(migrated_database_url, account, 3)
    ids = [key_id for key_id, _ in keys]
    for _, plaintext in keys:  # cached with their old scopes
        assert (await client.get("/api/v1/usage", headers=bearer(plaintext))).status_code == 200
    expires = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    changes = {
        "scopes": ["execute"],
        "expires_at": expires.isoformat(),
        "requests_per_minute": 2,
    }

    response = await client.post(
        "/api/v1/keys/bulk",
        headers=account.headers,
        json={"action": "update", "ids": ids, "changes": changes},
    )

    assert response.status_code == 200, response.text
    assert response.json()["changed"] == 3
    listed = (await client.get("/api/v1/keys?per_page=100", headers=account.headers)).json()
    by_id = {key["id"]: key for key in listed["items"]}
    for key_id in ids:
        assert by_id[key_id]["scopes"] == ["execute"]
        assert by_id[key_id]["requests_per_minute"] == 2
        assert datetime.fromisoformat(by_id[key_id]["expires_at"]) == expires
        assert by_id[key_id]["name"].startswith("bulk-")  # left alone
    # The new scopes hold at once, though the keys were cached with the old ones.
    for _, plaintext in keys:
        refused = await client.get("/api/v1/usage", headers=bearer(plaintext))
        assert refused.status_code == 403
        assert refused.json()["code"] == "insufficient_scope"

    cleared = await client.post(
        "/api/v1/keys/bulk",
        headers=account.headers,
        json={"action": "update", "ids": ids[:1], "changes": {"expires_at": None}},
    )
    assert cleared.status_code == 200, cleared.text
    listed = (await client.get("/api/v1/keys?per_page=100", headers=account.headers)).json()
    assert {key["id"]: key["expires_at"] for key in listed["items"]}[ids[0]] is None


async def test_update_refuses_what_a_new_key_could_not_have_and_spent_keys(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    keys = await make_keys(migrated_database_url, account, 2)
    ids = [key_id for key_id, _ in keys]

    async def update(changes: dict[str, Any], key_ids: list[str] = ids) -> httpx.Response:
        return await client.post(
            "/api/v1/keys/bulk",
            headers=account.headers,
            json={"action": "update", "ids": key_ids, "changes": changes},
        )

    assert (await update({"scopes": ["admin"]})).json()["code"] == "insufficient_scope"
    assert (await update({"requests_per_minute": 10**6})).json()["code"] == "invalid_key_limit"
    assert (await update({"name": " "})).json()["code"] == "invalid_name"
    past = {"expires_at": "2000-01-01T00:00:00Z"}
    assert (await update(past)).json()["code"] == "invalid_expiry"

    revoke = {"action": "revoke", "ids": ids[:1]}
    assert (await client.post("/api/v1/keys/bulk", headers=account.headers, json=revoke)).is_success
    refused = await update({"name": "renamed"})
    assert refused.status_code == 422
    assert [item["code"] for item in refused.json()["items"]] == ["key_inactive", None]
    names = (await client.get("/api/v1/keys?per_page=100", headers=account.headers)).json()
    assert "renamed" not in {key["name"] for key in names["items"]}


async def test_each_key_revoked_in_bulk_is_told_to_webhooks(
    server_factory: ServerFactory,
    account: Account,
    migrated_database_url: str,
    receiver: Receiver,
) -> None:
    server = server_factory(**FAST)
    keys = await make_keys(migrated_database_url, account, 3)
    ids = [key_id for key_id, _ in keys]
    async with client_of(server) as client:
        await add_endpoint(client, account, receiver, "/keys", ["key.revoked"])
        response = await client.post(
            "/api/v1/keys/bulk", headers=account.headers, json={"action": "revoke", "ids": ids}
        )
        assert response.status_code == 200, response.text
        received = await receiver.wait("/keys", 3)
        await asyncio.sleep(0.3)
    assert event_types(received) == ["key.revoked"] * 3
    assert sorted(d.payload["data"]["id"] for d in received) == sorted(ids)
    assert all(d.payload["data"]["revoked_at"] for d in received)
    assert len(receiver.on("/keys")) == 3
