"""Webhooks over real HTTP, on each database: endpoints and their codes, deliveries signed
and verified by a real receiver on 127.0.0.1 (standardwebhooks), retries, redelivery,
disabling, and the SSRF rules (private targets, DNS rebinding, redirects, huge answers)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests.api.test_jobs import submit as submit_job
from tests.api.wat import ECHO, UNKNOWN_IMPORT
from tests.api.webhook_receiver import Delivery, Receiver, running_receiver
from tests.fixtures.app import Account, LiveServer, ServerFactory, create_account
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import WebhookDelivery, WebhookEvent
from wasmwiz.persistence.repositories import tiers
from wasmwiz.services.principals import Scope

pytestmark = pytest.mark.anyio

# Short waits between attempts, private targets allowed (the receiver is on 127.0.0.1).
FAST = {
    "webhook_allow_private_targets": True,
    "webhook_retry_schedule": "0.2,0.2,0.2",
    "webhook_sweep_seconds": 0.5,
}


LONG_URL = "https://x.example/" + "a" * 2048


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


def client_of(server: LiveServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30)


async def add_endpoint(
    client: httpx.AsyncClient,
    account: Account,
    receiver: Receiver,
    path: str,
    events: Sequence[str] = ("key.created",),
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/webhooks",
        headers=account.headers,
        json={"url": receiver.url(path), "events": list(events)},
    )
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    receiver.secrets[path] = endpoint["secret"]
    return endpoint


async def create_key(client: httpx.AsyncClient, account: Account, name: str = "ci") -> str:
    response = await client.post("/api/v1/keys", headers=account.headers, json={"name": name})
    assert response.status_code == 201, response.text
    key_id: str = response.json()["id"]
    return key_id


async def deliveries(
    client: httpx.AsyncClient, account: Account, endpoint_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=account.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def wait_for_log(
    client: httpx.AsyncClient,
    account: Account,
    endpoint_id: str,
    state: str,
    count: int = 1,
    seconds: float = 30.0,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        items = await deliveries(client, account, endpoint_id)
        if sum(item["state"] == state for item in items) >= count:
            return items
        assert time.monotonic() < deadline, items
        await asyncio.sleep(0.05)


def event_types(received: Sequence[Delivery]) -> list[str]:
    return [delivery.payload["type"] for delivery in received]


async def test_endpoints_are_added_listed_changed_rotated_and_deleted(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    server = server_factory(**FAST, webhook_max_endpoints=2)
    async with client_of(server) as client:
        created = await add_endpoint(client, account, receiver, "/a", ["job.finished"])
        assert created["secret"].startswith("whsec_")
        assert created["enabled"] is True
        assert created["events"] == ["job.finished"]
        endpoint_id = created["id"]

        listed = await client.get("/api/v1/webhooks", headers=account.headers)
        assert [item["id"] for item in listed.json()["items"]] == [endpoint_id]
        assert "secret" not in listed.json()["items"][0]
        assert listed.json()["next_cursor"] is None

        changed = await client.patch(
            f"/api/v1/webhooks/{endpoint_id}",
            headers=account.headers,
            json={"events": ["key.revoked", "key.created"], "description": "ops"},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["events"] == ["key.created", "key.revoked"]
        assert changed.json()["description"] == "ops"

        rotated = await client.post(
            f"/api/v1/webhooks/{endpoint_id}/rotate-secret", headers=account.headers
        )
        assert rotated.status_code == 200
        assert rotated.json()["secret"].startswith("whsec_")
        assert rotated.json()["secret"] != created["secret"]
        assert rotated.headers["cache-control"] == "no-store"

        await add_endpoint(client, account, receiver, "/b")
        third = await client.post(
            "/api/v1/webhooks",
            headers=account.headers,
            json={"url": receiver.url("/c"), "events": ["key.created"]},
        )
        assert third.status_code == 409
        assert third.json()["code"] == "too_many_webhooks"

        deleted = await client.delete(f"/api/v1/webhooks/{endpoint_id}", headers=account.headers)
        assert deleted.status_code == 204
        gone = await client.get(f"/api/v1/webhooks/{endpoint_id}", headers=account.headers)
        assert gone.status_code == 404
        assert gone.json()["code"] == "webhook_not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/", "events": ["key.created"]}, "webhook_url_refused"),
        ({"url": "http://", "events": ["key.created"]}, "webhook_url_refused"),
        (
            {"url": "https://x.example/" + "a" * 2048, "events": ["key.created"]},
            "webhook_url_refused",
        ),
        ({"url": "http://127.0.0.1:9/", "events": ["key.created"]}, "webhook_url_refused"),
        ({"url": "http://169.254.169.254/", "events": ["key.created"]}, "webhook_url_refused"),
        ({"url": "http://[::ffff:10.0.0.1]/", "events": ["key.created"]}, "webhook_url_refused"),
        ({"url": "http://user:pw@example.com/", "events": ["key.created"]}, "webhook_url_refused"),
        ({"url": "https://example.com/", "events": []}, "invalid_webhook_events"),
        ({"url": "https://example.com/", "events": ["job.done"]}, "invalid_webhook_events"),
    ],
)
async def test_bad_endpoints_are_refused_with_their_code(
    server_factory: ServerFactory, account: Account, body: dict[str, Any], code: str
) -> None:
    # Private targets not allowed here: loopback and private addresses are refused.
    server = server_factory(app_options={"resolver": public_resolver})
    async with client_of(server) as client:
        response = await client.post("/api/v1/webhooks", headers=account.headers, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


async def public_resolver(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


async def test_webhooks_need_the_keys_write_scope(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    runner = await create_account(migrated_database_url, scopes=frozenset({Scope.EXECUTE}))
    server = server_factory(**FAST)
    async with client_of(server) as client:
        response = await client.get("/api/v1/webhooks", headers=runner.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


async def test_a_receiver_answering_500_twice_gets_the_event_on_the_third_attempt(
    server_factory: ServerFactory,
    account: Account,
    receiver: Receiver,
    backend: dict[str, Any],
) -> None:
    server = server_factory(**FAST, **backend)
    receiver.scripts["/hook"] = [500, 500, 200]
    async with client_of(server) as client:
        endpoint = await add_endpoint(client, account, receiver, "/hook")
        key_id = await create_key(client, account, "deploy")
        received = await receiver.wait("/hook", 3)
        log = await wait_for_log(client, account, endpoint["id"], "succeeded")
    assert receiver.forged == []
    assert {delivery.headers["webhook-id"] for delivery in received} == {
        "msg_" + log[0]["event_id"].replace("-", "")
    }
    assert event_types(received) == ["key.created"] * 3
    data = received[-1].payload["data"]
    assert data["id"] == key_id
    assert data["name"] == "deploy"
    assert log[0]["attempts"] == 3
    assert log[0]["last_status"] == 200
    assert log[0]["last_error"] is None
    await asyncio.sleep(0.6)  # nothing more comes: delivered once it succeeded
    assert len(receiver.on("/hook")) == 3


async def test_redeliver_sends_the_event_again_with_its_id(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    server = server_factory(**FAST)
    async with client_of(server) as client:
        endpoint = await add_endpoint(client, account, receiver, "/hook")
        await create_key(client, account)
        [first] = await receiver.wait("/hook", 1)
        [done] = await wait_for_log(client, account, endpoint["id"], "succeeded")
        response = await client.post(
            f"/api/v1/webhooks/{endpoint['id']}/deliveries/{done['id']}/redeliver",
            headers=account.headers,
        )
        assert response.status_code == 202, response.text
        again = await receiver.wait("/hook", 2)
        log = await wait_for_log(client, account, endpoint["id"], "succeeded", count=2)
        unknown = await client.post(
            f"/api/v1/webhooks/{endpoint['id']}/deliveries/{endpoint['id']}/redeliver",
            headers=account.headers,
        )
    assert again[1].headers["webhook-id"] == first.headers["webhook-id"]
    assert again[1].body == first.body
    assert len(log) == 2
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "webhook_not_found"


async def test_the_delivery_log_is_deleted_after_its_days_but_what_is_still_to_send(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    server = server_factory(**FAST, webhook_log_days=30)
    async with client_of(server) as client:
        endpoint = await add_endpoint(client, account, receiver, "/hook")
        for name in ("old", "waiting", "recent"):
            await create_key(client, account, name)
        delivered = await wait_for_log(client, account, endpoint["id"], "succeeded", count=3)
        # Newest first: recent, waiting, old. Two made 31 days ago, one of them still to send.
        recent, waiting, old = (item["id"] for item in delivered)
        database = Database(server.settings.database_url)
        try:
            async with database.writer() as session:
                aged = datetime.now(UTC) - timedelta(days=31)
                events = select(WebhookDelivery.event_id).where(
                    WebhookDelivery.id.in_([uuid.UUID(old), uuid.UUID(waiting)])
                )
                await session.execute(
                    update(WebhookEvent).where(WebhookEvent.id.in_(events)).values(created_at=aged)
                )
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == uuid.UUID(waiting))
                    .values(state="pending", next_attempt_at=aged + timedelta(days=365))
                )
                await session.commit()
        finally:
            await database.dispose()
        deadline = time.monotonic() + 30
        while len(kept := await deliveries(client, account, endpoint["id"])) > 2:
            assert time.monotonic() < deadline, kept
            await asyncio.sleep(0.1)
    assert [item["id"] for item in kept] == [recent, waiting]


async def test_an_endpoint_that_keeps_failing_is_disabled_and_the_others_are_told(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    server = server_factory(
        **{**FAST, "webhook_retry_schedule": "0.2"}, webhook_disable_after_failures=2
    )
    receiver.scripts["/down"] = [500]
    async with client_of(server) as client:
        failing = await add_endpoint(client, account, receiver, "/down")
        await add_endpoint(client, account, receiver, "/ops", ["endpoint.disabled"])
        await create_key(client, account, "one")
        await wait_for_log(client, account, failing["id"], "failed")
        await create_key(client, account, "two")
        [told] = await receiver.wait("/ops", 1)
        shown = await client.get(f"/api/v1/webhooks/{failing['id']}", headers=account.headers)
        await create_key(client, account, "three")  # not sent: the endpoint is disabled
        await asyncio.sleep(1)
        log = await deliveries(client, account, failing["id"])
        enabled = await client.patch(
            f"/api/v1/webhooks/{failing['id']}", headers=account.headers, json={"enabled": True}
        )
    assert told.payload["type"] == "endpoint.disabled"
    assert told.payload["data"]["id"] == failing["id"]
    assert shown.json()["enabled"] is False
    assert shown.json()["disabled_reason"]
    assert shown.json()["consecutive_failures"] == 2
    assert len(receiver.on("/down")) == 4  # two deliveries, two attempts each
    assert [item["state"] for item in log] == ["failed", "failed"]
    assert enabled.json()["enabled"] is True
    assert enabled.json()["consecutive_failures"] == 0
    assert enabled.json()["disabled_reason"] is None


async def test_a_name_that_resolves_to_a_private_address_is_refused(
    server_factory: ServerFactory, account: Account
) -> None:
    async def private(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.1.2.3"]

    server = server_factory(app_options={"resolver": private})
    async with client_of(server) as client:
        response = await client.post(
            "/api/v1/webhooks",
            headers=account.headers,
            json={"url": "https://hooks.example/", "events": ["key.created"]},
        )
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_url_refused"
    assert "10.1.2.3" in response.json()["detail"]


async def test_a_name_rebound_to_loopback_is_refused_at_connect_time(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    answers = iter([["93.184.215.14"]])

    async def rebinding(host: str, port: int) -> list[str]:
        # Public when the endpoint is registered, loopback ever after.
        return next(answers, ["127.0.0.1"])

    server = server_factory(
        webhook_retry_schedule="", webhook_sweep_seconds=0.5, app_options={"resolver": rebinding}
    )
    async with client_of(server) as client:
        response = await client.post(
            "/api/v1/webhooks",
            headers=account.headers,
            json={"url": f"http://rebind.example:{receiver.port}/hook", "events": ["key.created"]},
        )
        assert response.status_code == 201, response.text
        await create_key(client, account)
        [failed] = await wait_for_log(client, account, response.json()["id"], "failed")
    assert receiver.requests == []
    assert "127.0.0.1" in failed["last_error"]
    assert failed["last_status"] is None


async def test_a_redirect_is_not_followed(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    server = server_factory(**{**FAST, "webhook_retry_schedule": ""})
    receiver.scripts["/moved"] = ["redirect"]
    async with client_of(server) as client:
        endpoint = await add_endpoint(client, account, receiver, "/moved")
        await create_key(client, account)
        [failed] = await wait_for_log(client, account, endpoint["id"], "failed")
    assert receiver.requests == ["/moved"]
    assert failed["last_status"] == 302
    assert "redirect" in failed["last_error"]


async def test_a_huge_answer_is_not_read(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    server = server_factory(**FAST)
    receiver.scripts["/huge"] = ["huge"]
    async with client_of(server) as client:
        endpoint = await add_endpoint(client, account, receiver, "/huge")
        await create_key(client, account)
        [done] = await wait_for_log(client, account, endpoint["id"], "succeeded")
    assert done["last_status"] == 200
    # The sender read its 64 KiB and hung up: the receiver could not write more than what
    # the sockets' buffers hold, not the 256 MiB it had.
    await asyncio.sleep(0.5)
    assert receiver.huge_bytes_sent < 32 * 1024 * 1024


async def test_keys_created_and_revoked_are_told(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    server = server_factory(**FAST)
    async with client_of(server) as client:
        await add_endpoint(client, account, receiver, "/keys", ["key.created", "key.revoked"])
        key_id = await create_key(client, account, "short-lived")
        revoked = await client.delete(f"/api/v1/keys/{key_id}", headers=account.headers)
        assert revoked.status_code == 204
        await client.delete(f"/api/v1/keys/{key_id}", headers=account.headers)  # no change
        received = await receiver.wait("/keys", 2)
        await asyncio.sleep(0.5)
    assert receiver.forged == []
    assert sorted(event_types(received)) == ["key.created", "key.revoked"]
    assert len(receiver.on("/keys")) == 2
    revoked_event = next(d.payload for d in received if d.payload["type"] == "key.revoked")
    assert revoked_event["data"]["id"] == key_id
    assert revoked_event["data"]["revoked_at"] is not None


async def test_a_quota_warning_at_80_percent_once_a_day(
    server_factory: ServerFactory,
    account: Account,
    receiver: Receiver,
    migrated_database_url: str,
) -> None:
    database = Database(migrated_database_url)
    try:
        async with database.writer() as session:
            assert await tiers.update(session, "pro", requests_per_day=5)
            await session.commit()
    finally:
        await database.dispose()
    server = server_factory(**FAST)
    async with client_of(server) as client:
        await add_endpoint(client, account, receiver, "/quota", ["quota.warning"])
        for _ in range(5):
            response = await client.post(
                "/api/v1/execute",
                headers=account.headers,
                files={"wasm": ("echo.wat", ECHO.encode())},
            )
            assert response.status_code == 200, response.text
        [warning] = await receiver.wait("/quota", 1)
        await asyncio.sleep(0.5)
    assert len(receiver.on("/quota")) == 1
    assert warning.payload["type"] == "quota.warning"
    assert warning.payload["data"]["daily_limit"] == 5
    assert warning.payload["data"]["used"] == 4


async def test_jobs_tell_their_end_to_endpoints_and_to_their_callback_url(
    server_factory: ServerFactory,
    account: Account,
    receiver: Receiver,
    backend: dict[str, Any],
) -> None:
    server = server_factory(**FAST, **backend)
    async with client_of(server) as client:
        await add_endpoint(client, account, receiver, "/jobs", ["job.finished", "job.failed"])
        secret = await client.get("/api/v1/webhooks/callback-secret", headers=account.headers)
        receiver.secrets["/callback"] = secret.json()["secret"]
        finished = await submit_job(
            client, account, ECHO, input="hi", callback_url=receiver.url("/callback")
        )
        assert finished.status_code == 202, finished.text
        [callback] = await receiver.wait("/callback", 1)
        failed = await submit_job(client, account, UNKNOWN_IMPORT)
        assert failed.status_code == 202, failed.text
        told = await receiver.wait("/jobs", 2)
        job = await client.get(f"/api/v1/jobs/{finished.json()['id']}", headers=account.headers)
    assert receiver.forged == []
    assert callback.payload["type"] == "job.finished"
    assert callback.payload["data"] == job.json()
    assert callback.payload["data"]["result"]["output"] == "hi"
    by_type = {delivery.payload["type"]: delivery.payload["data"] for delivery in told}
    assert by_type["job.finished"]["id"] == finished.json()["id"]
    assert by_type["job.failed"]["id"] == failed.json()["id"]
    assert by_type["job.failed"]["error"]["code"] == "unsupported_import"


async def test_a_callback_url_on_a_private_address_is_refused_at_submission(
    server_factory: ServerFactory, account: Account
) -> None:
    server = server_factory()
    async with client_of(server) as client:
        response = await submit_job(client, account, ECHO, callback_url="http://10.0.0.1/hook")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_callback_url"
