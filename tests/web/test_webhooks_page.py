"""The webhooks pages: add an endpoint (its secret shown once), the delivery log of the
key created on the keys page, redeliver, disable, the notice of an endpoint disabled for
failing, a refused target, the callback secret, enable, rotate and delete. A real
receiver on 127.0.0.1 verifies every call."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.api.webhook_receiver import Receiver, running_receiver
from tests.fixtures.app import ServerFactory
from tests.web.helpers import new_email, page_csrf, sign_up

pytestmark = pytest.mark.anyio

_SECRET = re.compile(r'value="(whsec_[A-Za-z0-9+/=]+)"')
_ENDPOINT = re.compile(r'href="/webhooks/([0-9a-f-]{36})"')


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


async def add_endpoint(client: httpx.AsyncClient, receiver: Receiver, path: str) -> str:
    token = await page_csrf(client, "/webhooks")
    response = await client.post(
        "/webhooks",
        data={"url": receiver.url(path), "events": ["key.created"], "csrf_token": token},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    match = _SECRET.search(response.text)
    assert match, "the secret is shown"
    receiver.secrets[path] = match.group(1)
    listed = await client.get("/webhooks")
    assert match.group(1) not in listed.text  # shown once
    found = _ENDPOINT.search(listed.text)
    assert found
    return found.group(1)


async def create_key_on_the_page(client: httpx.AsyncClient, name: str) -> None:
    token = await page_csrf(client)
    response = await client.post("/generate-key", data={"name": name, "csrf_token": token})
    assert response.status_code == 200, response.text


async def wait_for_page(client: httpx.AsyncClient, path: str, text: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        page = (await client.get(path)).text
        if text in page:
            return page
        assert time.monotonic() < deadline, page
        await asyncio.sleep(0.1)


async def test_an_endpoint_added_on_the_page_gets_the_key_created_there(
    server_factory: ServerFactory, receiver: Receiver
) -> None:
    server = server_factory(webhook_allow_private_targets=True, webhook_retry_schedule="0.2")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await sign_up(client, new_email())
        endpoint_id = await add_endpoint(client, receiver, "/hook")
        await create_key_on_the_page(client, "laptop")
        [delivery] = await receiver.wait("/hook", 1)
        page = await wait_for_page(client, f"/webhooks/{endpoint_id}", "succeeded")
        assert "key.created" in page
        delivery_id = re.search(r"/deliveries/([0-9a-f-]{36})/redeliver", page)
        assert delivery_id
        token = await page_csrf(client, f"/webhooks/{endpoint_id}")
        again = await client.post(
            f"/webhooks/{endpoint_id}/deliveries/{delivery_id.group(1)}/redeliver",
            data={"csrf_token": token},
        )
        assert again.status_code == 303
        await receiver.wait("/hook", 2)
        disabled = await client.post(f"/webhooks/{endpoint_id}/disable", data={"csrf_token": token})
        assert disabled.status_code == 303
        await create_key_on_the_page(client, "desktop")
        await asyncio.sleep(0.5)
        shown = await client.get(f"/webhooks/{endpoint_id}")
    assert delivery.payload["data"]["name"] == "laptop"
    assert receiver.forged == []
    assert len(receiver.on("/hook")) == 2
    assert "disabled" in shown.text


async def test_an_endpoint_disabled_for_failing_has_a_notice(
    server_factory: ServerFactory, receiver: Receiver
) -> None:
    server = server_factory(
        webhook_allow_private_targets=True,
        webhook_retry_schedule="",
        webhook_disable_after_failures=1,
    )
    receiver.scripts["/down"] = [503]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await sign_up(client, new_email())
        endpoint_id = await add_endpoint(client, receiver, "/down")
        await create_key_on_the_page(client, "ci")
        listed = await wait_for_page(client, "/webhooks", "was disabled on")
        detail = await client.get(f"/webhooks/{endpoint_id}")
    assert "failed every attempt" in listed
    assert "HTTP 503" in detail.text
    assert "Enable" in detail.text


async def test_a_bad_target_is_refused_and_an_endpoint_enabled_rotated_and_deleted(
    server_factory: ServerFactory, receiver: Receiver
) -> None:
    server = server_factory(webhook_allow_private_targets=True)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await sign_up(client, new_email())
        token = await page_csrf(client, "/webhooks")
        refused = await client.post(
            "/webhooks", data={"url": "ftp://example.invalid/", "csrf_token": token}
        )
        endpoint_id = await add_endpoint(client, receiver, "/hook")
        first_secret = receiver.secrets["/hook"]
        callback = await client.post("/webhooks/callback-secret/rotate", data={"csrf_token": token})
        disabled = await client.post(f"/webhooks/{endpoint_id}/disable", data={"csrf_token": token})
        enabled = await client.post(f"/webhooks/{endpoint_id}/enable", data={"csrf_token": token})
        shown = await client.get(enabled.headers["location"])
        rotated = await client.post(
            f"/webhooks/{endpoint_id}/rotate-secret", data={"csrf_token": token}
        )
        deleted = await client.post(f"/webhooks/{endpoint_id}/delete", data={"csrf_token": token})
        listed = await client.get(deleted.headers["location"])
        gone = await client.get(f"/webhooks/{endpoint_id}")
    # A bad target is refused on the page itself, with the form's values kept.
    assert refused.status_code == 400, refused.text
    assert 'class="alert alert-error"' in refused.text
    assert "ftp://example.invalid/" in refused.text
    # The callback secret is shown once, on a page not to be cached.
    assert 'id="callback-secret"' in callback.text
    assert callback.headers["cache-control"] == "no-store"
    assert (disabled.status_code, enabled.status_code) == (303, 303)
    assert "The endpoint is enabled." in shown.text
    new_secret = _SECRET.search(rotated.text)
    assert new_secret
    assert new_secret.group(1) != first_secret
    assert rotated.headers["cache-control"] == "no-store"
    assert deleted.status_code == 303
    assert "The endpoint is deleted" in listed.text
    assert endpoint_id not in listed.text
    assert gone.status_code == 404
