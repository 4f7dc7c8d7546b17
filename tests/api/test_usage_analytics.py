"""The usage analytics over HTTP on SQLite and PostgreSQL: known rows across two months,
three keys (one revoked) and the web playground, every grouping, the filters, pages, CSV,
the refusals, and the admin view across accounts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.api.test_admin_api import create_admin
from tests.fixtures.app import TEST_SALT, Account, ServerFactory, create_account
from tests.persistence.factories import usage_record
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import usage_logs, wasm_modules
from wasmwiz.ratelimit.bucket import utc_date
from wasmwiz.services.api_keys import ApiKeyService

pytestmark = pytest.mark.anyio

SHA_A, SHA_B, SHA_C, SHA_D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
# January to February 2026 (`to` is a date: its whole day is included).
RANGE = {"from": "2026-01-01", "to": "2026-02-28"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class Known:
    account: Account
    other: Account
    admin: Account
    ci_key: uuid.UUID
    old_key: uuid.UUID  # revoked before the test reads

    @property
    def test_key(self) -> uuid.UUID:
        return self.account.api_key_id


# (when, key, outcome, duration ms, fuel, peak memory, module, cached); key: "test", "ci",
# "old" (revoked) or None (the web playground); fuel None: a run without a fuel budget,
# not metered.
ROWS: list[tuple[str, str | None, str, float, int | None, int, str, bool]] = [
    ("2025-12-31T23:59:59+00:00", "test", "success", 1, 1, 1, SHA_A, False),  # before the range
    ("2026-01-15T12:00:00+00:00", "ci", "success", 60, 600, 600, SHA_C, False),
    ("2026-01-31T23:00:00+00:00", "ci", "trap", 20, 200, 3000, SHA_A, False),
    ("2026-01-31T23:59:59+00:00", "test", "success", 10, 100, 1000, SHA_A, False),
    ("2026-02-01T00:00:00+00:00", "test", "success", 30, 300, 2000, SHA_B, True),
    ("2026-02-01T00:59:59.999999+00:00", "old", "timeout", 40, 400, 4000, SHA_B, False),
    ("2026-02-01T01:00:00+00:00", None, "exit_nonzero", 50, None, 500, SHA_A, False),
    ("2026-02-28T23:59:59+00:00", "test", "fuel_exhausted", 70, 700, 700, SHA_C, False),
    ("2026-03-01T00:00:00+00:00", "test", "success", 1, 1, 1, SHA_A, False),  # after it
]


async def seed(database_url: str) -> Known:
    account = await create_account(database_url, email="owner@example.com")
    other = await create_account(database_url, email="other@example.com")
    admin = await create_admin(database_url)
    database = Database(database_url)
    try:
        async with database.writer() as session:
            keys = ApiKeyService(TEST_SALT)
            ci = await keys.create(session, account.user_id, name="ci")
            old = await keys.create(session, account.user_id, name="old")
            await keys.revoke(session, old.key.id)
            key_ids = {"test": account.api_key_id, "ci": ci.key.id, "old": old.key.id, None: None}
            records = [
                usage_record(
                    account.user_id,
                    created_at=at(when),
                    api_key_id=key_ids[key],
                    status=outcome,
                    duration_ms=duration,
                    fuel_consumed=fuel,
                    memory_peak_bytes=memory,
                    module_sha256=module,
                    cached=cached,
                    input_size=1,
                    output_size=2,
                    stderr_size=3,
                )
                for when, key, outcome, duration, fuel, memory, module, cached in ROWS
            ]
            records += [
                usage_record(
                    other.user_id,
                    created_at=at("2026-02-01T10:00:00+00:00"),
                    api_key_id=other.api_key_id,
                    module_sha256=SHA_D,
                )
                for _ in range(2)
            ]
            await usage_logs.insert_many(session, records)
            # The account keeps module B under two names; the other account names A.
            for user_id, sha256, names in (
                (account.user_id, SHA_B, ("grader", "best")),
                (other.user_id, SHA_A, ("theirs",)),
            ):
                stored = await wasm_modules.add(
                    session,
                    user_id=user_id,
                    sha256=sha256,
                    data=b"\0asm\1\0\0\0",
                    imports="[]",
                    exports="[]",
                    is_command=True,
                )
                for name in names:
                    await wasm_modules.set_name(session, user_id, name, stored.id)
            await session.commit()
    finally:
        await database.dispose()
    return Known(account, other, admin, ci.key.id, old.key.id)


@pytest.fixture
async def known(migrated_database_url: str) -> Known:
    return await seed(migrated_database_url)


@pytest.fixture
async def http(server_factory: ServerFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_factory().url, timeout=30) as client:
        yield client


async def usage(
    http: httpx.AsyncClient, who: Account, path: str = "/api/v1/usage", **params: Any
) -> dict[str, Any]:
    response = await http.get(path, headers=who.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def figures(body: dict[str, Any], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(item[name] for name in ("group", *names)) for item in body["items"]]


async def test_by_day_months_meet_at_utc_midnight_as_the_daily_quota_resets(
    http: httpx.AsyncClient, known: Known
) -> None:
    body = await usage(http, known.account, **RANGE)
    assert body["group_by"] == "day"
    assert body["from"] == "2026-01-01T00:00:00Z"
    assert body["to"] == "2026-03-01T00:00:00Z"
    assert body["user_id"] == str(known.account.user_id)
    assert body["next_cursor"] is None
    assert figures(body, "executions", "outcomes") == [
        ("2026-01-15", 1, {"success": 1}),
        ("2026-01-31", 2, {"success": 1, "trap": 1}),
        ("2026-02-01", 3, {"exit_nonzero": 1, "success": 1, "timeout": 1}),
        ("2026-02-28", 1, {"fuel_exhausted": 1}),
    ]
    # Each run is in the day whose quota it counted against.
    in_range = [row for row in ROWS if "2026-01" <= row[0][:7] <= "2026-02"]
    per_quota_day: dict[str, int] = {}
    for row in in_range:
        day = utc_date(at(row[0]).timestamp())
        per_quota_day[day] = per_quota_day.get(day, 0) + 1
    assert {item["group"]: item["executions"] for item in body["items"]} == per_quota_day
    february_first = body["items"][2]
    assert february_first == {
        "group": "2026-02-01",
        "name": None,
        "executions": 3,
        "outcomes": {"exit_nonzero": 1, "success": 1, "timeout": 1},
        "cached": 1,
        "wall_time_ms": 120.0,
        "fuel_consumed": 700,  # the unmetered run adds nothing
        "memory_peak_bytes_max": 4000,
        "input_bytes": 3,
        "output_bytes": 6,
        "stderr_bytes": 9,
    }


async def test_by_hour_with_times_in_other_offsets(http: httpx.AsyncClient, known: Known) -> None:
    body = await usage(
        http,
        known.account,
        group_by="hour",
        **{"from": "2026-02-01T00:00:00+02:00", "to": "2026-02-01T03:00:00+01:00"},
    )
    assert (body["from"], body["to"]) == ("2026-01-31T22:00:00Z", "2026-02-01T02:00:00Z")
    assert figures(body, "executions", "outcomes") == [
        ("2026-01-31T23:00:00Z", 2, {"success": 1, "trap": 1}),
        ("2026-02-01T00:00:00Z", 2, {"success": 1, "timeout": 1}),
        ("2026-02-01T01:00:00Z", 1, {"exit_nonzero": 1}),
    ]
    # A time's `to` is excluded: the run at 01:00:00 falls out.
    before = await usage(
        http,
        known.account,
        group_by="hour",
        **{"from": "2026-01-31T22:00:00Z", "to": "2026-02-01T01:00:00Z"},
    )
    assert [item["group"] for item in before["items"]] == [
        "2026-01-31T23:00:00Z",
        "2026-02-01T00:00:00Z",
    ]


async def test_by_key_names_revoked_keys_and_the_playground(
    http: httpx.AsyncClient, known: Known
) -> None:
    body = await usage(http, known.account, group_by="key", **RANGE)
    keys = sorted(
        [(known.test_key, "test", 3), (known.ci_key, "ci", 2), (known.old_key, "old", 1)],
        key=lambda key: str(key[0]),
    )
    assert figures(body, "name", "executions") == [
        (None, None, 1),  # the web playground's runs come first
        *((str(key_id), name, count) for key_id, name, count in keys),
    ]


async def test_by_outcome_and_by_module(http: httpx.AsyncClient, known: Known) -> None:
    by_outcome = await usage(http, known.account, group_by="outcome", **RANGE)
    assert figures(by_outcome, "executions", "wall_time_ms") == [
        ("exit_nonzero", 1, 50.0),
        ("fuel_exhausted", 1, 70.0),
        ("success", 3, 100.0),
        ("timeout", 1, 40.0),
        ("trap", 1, 20.0),
    ]
    by_module = await usage(http, known.account, group_by="module", **RANGE)
    assert figures(by_module, "executions", "outcomes", "name") == [
        # Another account's name for a module is not shown.
        (SHA_A, 3, {"exit_nonzero": 1, "success": 1, "trap": 1}, None),
        (SHA_B, 2, {"success": 1, "timeout": 1}, "best grader"),
        (SHA_C, 2, {"fuel_exhausted": 1, "success": 1}, None),
    ]


async def test_key_filter_and_defaults(http: httpx.AsyncClient, known: Known) -> None:
    body = await usage(http, known.account, key_id=str(known.test_key), **RANGE)
    assert body["key_id"] == str(known.test_key)
    assert figures(body, "executions") == [("2026-01-31", 1), ("2026-02-01", 1), ("2026-02-28", 1)]
    # Another account's key filters everything out: it is not this account's.
    assert (await usage(http, known.account, key_id=str(known.other.api_key_id), **RANGE))[
        "items"
    ] == []
    # Only `to`: the 30 days up to it, that day included.
    last_30 = await usage(http, known.account, to="2026-02-28")
    assert last_30["from"] == "2026-01-30T00:00:00Z"
    assert [item["group"] for item in last_30["items"]] == [
        "2026-01-31",
        "2026-02-01",
        "2026-02-28",
    ]


async def test_pages_walk_every_group_once(http: httpx.AsyncClient, known: Known) -> None:
    for group_by in ("day", "hour", "key", "outcome", "module"):
        span = RANGE if group_by != "hour" else {"from": "2026-01-31", "to": "2026-02-01"}
        whole = await usage(http, known.account, group_by=group_by, **span)
        walked: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await usage(
                http,
                known.account,
                group_by=group_by,
                limit=2,
                **span,
                **({"cursor": cursor} if cursor else {}),
            )
            assert len(page["items"]) <= 2
            walked += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert walked == whole["items"], group_by
        assert len(walked) >= 3, group_by


async def test_csv_has_the_same_rows(http: httpx.AsyncClient, known: Known) -> None:
    response = await http.get(
        "/api/v1/usage",
        headers=known.account.headers,
        params={"group_by": "key", "format": "csv", "key_id": str(known.ci_key), **RANGE},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="wasmwiz-usage-key-20260101T000000Z-20260301T000000Z.csv"'
    )
    assert response.text == (
        "api_key_id,api_key_name,executions,cached,outcome_success,outcome_exit_nonzero,"
        "outcome_trap,outcome_timeout,outcome_memory_limit,outcome_stack_overflow,"
        "outcome_output_limit,outcome_fuel_exhausted,wall_time_ms,fuel_consumed,"
        "memory_peak_bytes_max,input_bytes,output_bytes,stderr_bytes\r\n"
        f"{known.ci_key},ci,2,0,1,0,1,0,0,0,0,0,80.0,800,3000,2,4,6\r\n"
    )
    paged = await http.get(
        "/api/v1/usage",
        headers=known.account.headers,
        params={"format": "csv", "limit": 1, **RANGE},
    )
    lines = paged.text.splitlines()
    assert lines[0].startswith("day,executions,cached,outcome_success,")
    assert lines[1:] == ["2026-01-15,1,0,1,0,0,0,0,0,0,0,60.0,600,600,1,2,3"]
    following = await http.get(
        "/api/v1/usage",
        headers=known.account.headers,
        params={"format": "csv", "limit": 1, "cursor": paged.headers["x-next-cursor"], **RANGE},
    )
    assert following.text.splitlines()[1].startswith("2026-01-31,2,")


async def test_without_parameters_the_dashboard_summary_is_unchanged(
    http: httpx.AsyncClient, known: Known
) -> None:
    body = await usage(http, known.account)
    assert set(body) >= {"days", "total", "outcomes", "today", "daily_quota", "recent"}
    assert len(body["days"]) == 30
    assert "items" not in body


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"from": "2026-02-02", "to": "2026-02-01"}, "`from` must come before `to`"),
        ({"group_by": "week"}, "`group_by` is one of: day, hour, key, outcome, module."),
        ({"group_by": "account"}, "`group_by` is one of"),
        ({"group_by": "hour", "from": "2026-01-01", "to": "2026-02-01"}, "over 31 days"),
        ({"from": "2025-01-01", "to": "2026-02-01"}, "over 366 days"),
        ({"from": "2026-01-01T00:00:00"}, "needs an offset"),
        ({"from": "January"}, "neither a date"),
        ({"key_id": "ww_123"}, "`key_id` is not an id"),
        ({"cursor": "bm9wZQ"}, "`cursor` is not one"),
        ({"format": "xml"}, "`format` is `json` or `csv`"),
        ({"limit": "0"}, "`limit` is from 1 to 1000"),
    ],
)
async def test_bad_queries_are_refused_with_one_code(
    http: httpx.AsyncClient, account: Account, params: dict[str, str], detail: str
) -> None:
    response = await http.get("/api/v1/usage", headers=account.headers, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_usage_query"
    assert detail in response.json()["detail"]


async def test_a_cursor_of_another_grouping_is_refused(
    http: httpx.AsyncClient, known: Known
) -> None:
    page = await usage(http, known.account, group_by="outcome", limit=1, **RANGE)
    response = await http.get(
        "/api/v1/usage",
        headers=known.account.headers,
        params={"group_by": "day", "cursor": page["next_cursor"], **RANGE},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_usage_query"


async def test_admin_view_across_accounts(http: httpx.AsyncClient, known: Known) -> None:
    path = "/api/v1/admin/usage"
    by_account = await usage(http, known.admin, path, group_by="account", **RANGE)
    assert by_account["user_id"] is None
    accounts = sorted(
        [
            (str(known.account.user_id), "owner@example.com", 7),
            (str(known.other.user_id), "other@example.com", 2),
        ]
    )
    assert figures(by_account, "name", "executions") == accounts
    by_day = await usage(http, known.admin, path, **RANGE)
    assert figures(by_day, "executions") == [
        ("2026-01-15", 1),
        ("2026-01-31", 2),
        ("2026-02-01", 5),
        ("2026-02-28", 1),
    ]
    # One account's, as it sees them itself.
    one = await usage(http, known.admin, path, user_id=str(known.account.user_id), **RANGE)
    own = await usage(http, known.account, **RANGE)
    assert one["items"] == own["items"]
    csv = await http.get(
        path, headers=known.admin.headers, params={"group_by": "account", "format": "csv", **RANGE}
    )
    assert csv.text.splitlines()[0].startswith("user_id,email,executions,")
    assert len(csv.text.splitlines()) == 3
    bad = await http.get(path, headers=known.admin.headers, params={"user_id": "me"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_usage_query"


async def test_admin_view_is_refused_to_others(http: httpx.AsyncClient, known: Known) -> None:
    for headers in (known.account.headers, {}):
        response = await http.get("/api/v1/admin/usage", headers=headers)
        assert response.status_code in (401, 403)
    refused = await http.get("/api/v1/admin/usage", headers=known.account.headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
