"""Inputs that used to be 500s with a traceback are 4xx refusals with their own codes."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.api import wat
from tests.fixtures.app import Account

pytestmark = pytest.mark.anyio

# Deeper than Python's recursion limit: json.loads raised RecursionError.
DEEP_ARRAY = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("args", DEEP_ARRAY, "invalid_args"),
        ("env", DEEP_OBJECT, "invalid_env"),
        ("env", '{"A": ' + DEEP_ARRAY + "}", "invalid_env"),
        # JSON escapes for lone surrogates: UnicodeEncodeError in WasiConfig before.
        ("args", '["ok", "\\ud800"]', "invalid_args"),
        ("env", '{"NAME": "\\udfff"}', "invalid_env"),
        ("env", '{"\\ud83d": "value"}', "invalid_env"),
    ],
    ids=[
        "deep-args",
        "deep-env",
        "deep-env-value",
        "surrogate-arg",
        "surrogate-value",
        "surrogate-name",
    ],
)
async def test_bad_args_and_env_are_refused(
    client: httpx.AsyncClient,
    account: Account,
    field: str,
    value: str,
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.post(
            "/api/v1/execute",
            headers=account.headers,
            files={"wasm": ("main.wat", wat.HELLO.encode())},
            data={field: value},
        )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_a_valid_surrogate_pair_still_runs(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files={"wasm": ("main.wat", wat.HELLO.encode())},
        data={"args": '["\\ud83d\\ude00"]', "env": '{"SMILE": "\\ud83d\\ude00"}'},
    )
    assert response.status_code == 200, response.text


async def test_a_key_expiry_without_a_zone_is_refused(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.post(
        "/api/v1/keys",
        headers=account.headers,
        json={"name": "naive", "expires_at": "2030-01-01T00:00:00"},
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    assert "expires_at" in body["detail"]
    zoned = await client.post(
        "/api/v1/keys",
        headers=account.headers,
        json={"name": "zoned", "expires_at": "2030-01-01T00:00:00Z"},
    )
    assert zoned.status_code == 201, zoned.text
