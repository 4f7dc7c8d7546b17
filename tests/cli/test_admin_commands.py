"""`wasmwiz tiers`, `users set-tier|deactivate|reactivate|delete` and `keys revoke-all`
against a real migrated database, and a running server applying a CLI edit in seconds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.api.test_rate_limits import run_hello
from tests.cli.conftest import KEY
from tests.fixtures.app import TEST_SALT, ServerFactory, create_account
from tests.fixtures.database import run_outside_loop
from wasmwiz.cli.main import main


def table(output: str) -> dict[str, dict[str, str]]:
    """`wasmwiz tiers` output as {tier: {column: value}}."""
    header, *rows = [line.split() for line in output.splitlines() if line.strip()]
    header = [name.lower() for name in header]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows if len(row) == len(header)}


def test_tiers_are_listed_created_and_updated(
    environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tiers", "list"]) == 0
    free = table(capsys.readouterr().out)["free"]
    assert free["requests_per_minute"] == "10"
    assert free["requests_per_day"] == "500"
    assert free["max_concurrent_executions"] == "2"
    assert free["max_fuel"] == "none"
    assert free["max_api_keys"] == "5"
    # Null budgets are the server's, not "no limit"; pro has its own (migration 0013).
    assert free["api_requests_per_minute"] == "server"
    assert main(["tiers", "list"]) == 0
    pro = table(capsys.readouterr().out)["pro"]
    assert (pro["api_requests_per_minute"], pro["api_requests_per_day"]) == ("3000", "300000")

    create = ["tiers", "create", "team", "--requests-per-minute", "3"]
    create += ["--requests-per-day", "100", "--max-concurrent-executions", "1"]
    assert main([*create, "--max-api-keys", "2"]) == 0
    assert "created tier team" in capsys.readouterr().out
    assert main([*create, "--max-api-keys", "2"]) == 1
    assert "exists already" in capsys.readouterr().err

    assert main(["tiers", "update", "team", "--requests-per-minute", "4", "--max-fuel", "9"]) == 0
    team = table(capsys.readouterr().out.split("\n", 1)[1])["team"]
    assert (team["requests_per_minute"], team["requests_per_day"], team["max_fuel"]) == (
        "4",
        "100",
        "9",
    )
    assert main(["tiers", "update", "team", "--max-fuel", "none"]) == 0
    team = table(capsys.readouterr().out.split("\n", 1)[1])["team"]
    assert (team["requests_per_minute"], team["max_fuel"], team["max_api_keys"]) == (
        "4",
        "none",
        "2",
    )
    assert main(["tiers", "update", "gold", "--requests-per-minute", "4"]) == 1
    assert "no tier named 'gold'" in capsys.readouterr().err
    assert main(["tiers", "update", "team"]) == 1
    capsys.readouterr()


def test_users_move_tier_keys_are_capped_and_all_revoked(
    environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    create = ["tiers", "create", "duo", "--requests-per-minute", "3", "--requests-per-day"]
    assert main([*create, "100", "--max-concurrent-executions", "1", "--max-api-keys", "2"]) == 0
    assert main(["users", "create", "ada@example.com"]) == 0
    assert main(["users", "set-tier", "ada@example.com", "duo"]) == 0
    assert "ada@example.com is now on the duo tier" in capsys.readouterr().out
    assert main(["users", "set-tier", "ada@example.com", "gold"]) == 1

    for _ in range(2):
        assert main(["keys", "create", "ada@example.com", "--scope", "execute"]) == 0
    assert len(KEY.findall(capsys.readouterr().out)) == 2
    assert main(["keys", "create", "ada@example.com"]) == 1
    assert "the most the duo tier allows" in capsys.readouterr().err

    assert main(["keys", "revoke-all", "ada@example.com"]) == 0
    assert "revoked 2 key(s)" in capsys.readouterr().out
    assert main(["keys", "list", "ada@example.com"]) == 0
    assert capsys.readouterr().out.count("revoked") == 2

    assert main(["users", "deactivate", "ada@example.com"]) == 0
    assert main(["users", "reactivate", "ada@example.com"]) == 0
    assert main(["users", "delete", "ada@example.com"]) == 0
    assert "usage records kept" in capsys.readouterr().out
    assert main(["users", "delete", "ada@example.com"]) == 1
    assert "No user with the email" in capsys.readouterr().err


@pytest.mark.anyio
async def test_a_running_server_applies_a_tier_edited_with_the_cli(
    server_factory: ServerFactory,
    migrated_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    server = server_factory(api_key_cache_seconds=2)
    account = await create_account(migrated_database_url, tier="basic")
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("API_SALT", TEST_SALT)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "cli-var"))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await run_hello(client, account)).headers["X-RateLimit-Limit"] == "100"
        update = ["tiers", "update", "basic", "--requests-per-minute", "30"]
        assert run_outside_loop(lambda: main(update)) == 0
        edited_at = time.monotonic()
        while (await run_hello(client, account)).headers["X-RateLimit-Limit"] != "30":
            assert time.monotonic() - edited_at < 4, "not applied within the cache's TTL"
            await asyncio.sleep(0.1)
