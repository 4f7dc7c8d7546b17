"""The run options over HTTP: deterministic, seed and max_fuel (capped by the tier)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.sandbox.conftest import fixture_wat
from tests.security import guests
from tests.security.checks import execute, ran, refused
from tests.security.conftest import new_accounts, start_security_server

# Outcomes, nothing measured: with the parallel pass, under coverage.
pytestmark = pytest.mark.parallel


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("deterministic", "yes", "invalid_deterministic"),
        ("seed", "-1", "invalid_seed"),
        ("seed", str(2**64), "invalid_seed"),
        ("max_fuel", "0", "invalid_max_fuel"),
        ("max_fuel", "lots", "invalid_max_fuel"),
        ("cache", "perhaps", "invalid_cache"),
    ],
)
def test_bad_values_are_400_with_a_code(
    api: httpx.Client, field: str, value: str, code: str
) -> None:
    response = execute(api, guests.INFINITE_LOOP, **{field: value})

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_deterministic_runs_repeat_byte_for_byte_over_http(api: httpx.Client) -> None:
    # Sleeping 0.9 s of the server's 1 s limit.
    wat = fixture_wat("time_random_sleep").replace(b"3000000000", b"900000000")
    first = ran(api, wat, "success", deterministic="true", seed="7")
    # Run again, not answered from the result cache: the sandbox itself repeats.
    second = ran(api, wat, "success", deterministic="true", seed="7", cache="false")
    other = ran(api, wat, "success", deterministic="true", seed="8")
    cached = ran(api, wat, "success", deterministic="true", seed="7")

    assert first["output"] == second["output"] == cached["output"]
    assert first["output"] != other["output"]
    assert first["duration_ms"] < 300
    assert [body["cached"] for body in (first, second, other, cached)] == [
        False,
        False,
        False,
        True,
    ]


def test_max_fuel_ends_the_run(api: httpx.Client) -> None:
    body = ran(api, guests.INFINITE_LOOP, "fuel_exhausted", max_fuel="10000")

    assert body["fuel_consumed"] == 10_000


def test_the_tier_caps_max_fuel(tmp_path: Path) -> None:
    server = start_security_server(tmp_path, api_key_cache_seconds=0)
    try:
        database = server.settings.effective_database_url.removeprefix("sqlite:///")
        with sqlite3.connect(database) as connection:
            connection.execute("UPDATE subscription_tiers SET max_fuel = 5000 WHERE name = 'pro'")
        [account] = new_accounts(server, 1)
        with httpx.Client(base_url=server.url, headers=account.headers, timeout=60) as api:
            capped = ran(api, guests.INFINITE_LOOP, "fuel_exhausted", max_fuel="1000000")
            default = ran(api, guests.INFINITE_LOOP, "fuel_exhausted")
            smaller = ran(api, guests.INFINITE_LOOP, "fuel_exhausted", max_fuel="100")
            refused(api, b"", 422, "empty_wasm")
    finally:
        server.stop()

    assert capped["fuel_consumed"] == default["fuel_consumed"] == 5000
    assert smaller["fuel_consumed"] == 100
