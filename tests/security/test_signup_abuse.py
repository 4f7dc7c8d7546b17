"""Sign-up and sign-in floods against a real `wasmwiz serve` process, and what they cost it.

Clients speak through a trusted proxy (TRUSTED_PROXIES=127.0.0.1) that says who they
are in X-Forwarded-For, so one test machine can be many networks.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.fixtures.app import ServerProcess
from tests.web.helpers import PASSWORD, csrf_from, new_email
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import User

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MiB = 1024 * 1024
ARGON2_MIB = 64  # argon2-cffi's default memory cost per hash or check
PROXIED = {"trusted_proxies": "127.0.0.1", "log_level": "WARNING"}
ProcessFactory = Callable[..., ServerProcess]


def ipv4(index: int) -> str:
    """A distinct client network (an IPv4 address is its own network)."""
    return f"198.18.{index // 250}.{index % 250 + 1}"


def ipv6_network() -> str:
    """A fresh /64 (random, so Redis keys left by earlier runs never collide)."""
    return "2001:db8:" + ":".join(secrets.token_hex(2) for _ in range(2))


def browser(url: str, client_ip: str) -> httpx.AsyncClient:
    # A connection per request: on a loaded machine a reused keep-alive connection can be
    # closed by the server's keep-alive timeout just as the client sends on it.
    headers = {"X-Forwarded-For": client_ip, "Connection": "close"}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=120)


async def sign_up(client: httpx.AsyncClient, email: str) -> httpx.Response:
    token = csrf_from((await client.get("/signup")).text)
    return await client.post(
        "/signup",
        data={"email": email, "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token},
    )


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = csrf_from((await client.get("/login")).text)
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"no {name} in /metrics"
    return float(match.group(1))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def count_users(database_url: str) -> int:
    database = Database(database_url)
    try:
        async with database.session() as session:
            return await session.scalar(select(func.count()).select_from(User)) or 0
    finally:
        await database.dispose()


# What is raced here is the database's writes, not the hashing (the next test holds that
# to its pool): argon2 at its minimum cost, or 120 full-cost hashes on two threads took
# 14 s of the serial pass per database.
CHEAP_HASHES = {
    "password_hash_time_cost": "1",
    "password_hash_memory_kib": "8",
    "password_hash_parallelism": "1",
}


@pytest.mark.timeout(600)
async def test_forty_parallel_sign_ups_and_password_changes_all_succeed(
    process_factory: ProcessFactory, migrated_database_url: str
) -> None:
    # SQLite (the default database) refused 35 of 40 with "database is locked" before.
    server = process_factory(
        **PROXIED, **CHEAP_HASHES, password_hash_queue="64", signup_global_per_minute="500"
    )
    clients = [browser(server.url, ipv4(i)) for i in range(40)]
    try:
        emails = [new_email() for _ in clients]
        signed_up = await asyncio.gather(*map(sign_up, clients, emails))
        assert [r.status_code for r in signed_up] == [303] * 40
        assert await count_users(migrated_database_url) == 40

        async def change(client: httpx.AsyncClient) -> int:
            token = csrf_from((await client.get("/account")).text)
            new = "a new passphrase " + secrets.token_hex(4)
            response = await client.post(
                "/account/password",
                data={"current": PASSWORD, "password": new, "confirm": new, "csrf_token": token},
            )
            return response.status_code

        assert await asyncio.gather(*map(change, clients)) == [200] * 40
    finally:
        for client in clients:
            await client.aclose()


@pytest.mark.timeout(600)
async def test_a_hundred_parallel_sign_ups_stay_inside_the_hashing_pool(
    process_factory: ProcessFactory,
) -> None:
    threads, queue = 2, 4
    server = process_factory(
        **PROXIED,
        password_hash_threads=str(threads),
        password_hash_queue=str(queue),
        signup_global_per_minute="500",
    )
    baseline_peak = peak_rss_mib(server.process.pid)
    done = asyncio.Event()
    ready: list[int] = []

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as health:
            while not done.is_set():
                ready.append((await health.get("/health/ready")).status_code)
                await asyncio.sleep(0.05)

    async def one(index: int) -> httpx.Response:
        async with browser(server.url, ipv4(1000 + index)) as client:
            return await sign_up(client, new_email())

    prober = asyncio.create_task(probe())
    responses = await asyncio.gather(*(one(i) for i in range(100)))
    done.set()
    await prober

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {303, 429}, statuses
    assert statuses.count(303) >= threads + queue
    busy = [r for r in responses if r.status_code == 429]
    assert busy, "100 at once should overflow a queue of 4"
    assert all("busy checking other passwords" in r.text for r in busy)
    assert all(r.headers["retry-after"] == "2" for r in busy)
    assert metric(server.url, "wasmwiz_password_hashes_peak") <= threads
    assert metric(server.url, "wasmwiz_password_hashes_refused_total") == len(busy)
    assert ready
    assert set(ready) == {200}
    # asyncio's default pool would have run up to 32 at once (2 GiB); here at most
    # `threads` hashes' memory is ever held, plus the server's own working set.
    grown = peak_rss_mib(server.process.pid) - baseline_peak
    assert grown < (threads + 1) * ARGON2_MIB + 64, f"peak RSS grew {grown:.0f} MiB"


async def test_a_flood_from_one_ipv6_network_is_throttled_while_another_signs_up(
    process_factory: ProcessFactory,
) -> None:
    # Daily limits, so a slow machine's bucket refill cannot let one more through.
    server = process_factory(
        **PROXIED, signup_per_network_per_minute="3", signup_per_network_per_day="3"
    )
    network = ipv6_network()
    statuses = []
    hashes_before = metric(server.url, "wasmwiz_password_hashes_total")
    for host in range(1, 9):  # a new address of the same /64 each time
        async with browser(server.url, f"{network}:0:0:0:{host:x}") as client:
            statuses.append((await sign_up(client, new_email())).status_code)
    assert statuses == [303] * 3 + [429] * 5
    # A refused sign-up costs no hash.
    assert metric(server.url, "wasmwiz_password_hashes_total") == hashes_before + 3
    async with browser(server.url, ipv6_network() + "::1") as client:
        assert (await sign_up(client, new_email())).status_code == 303
    async with browser(server.url, "192.0.2.10") as client:
        assert (await sign_up(client, new_email())).status_code == 303


async def test_sign_ups_are_limited_for_the_whole_service(
    process_factory: ProcessFactory,
) -> None:
    server = process_factory(**PROXIED, signup_global_per_minute="2", signup_global_per_day="2")
    statuses = []
    for index in range(4):
        async with browser(server.url, ipv4(2000 + index)) as client:
            response = await sign_up(client, new_email())
            statuses.append(response.status_code)
    assert statuses == [303, 303, 429, 429]
    assert "Too many sign-ups" in response.text


@pytest.mark.redis
async def test_the_sign_up_throttle_is_shared_by_replicas(process_factory: ProcessFactory) -> None:
    redis_url = os.environ.get("WASMWIZ_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    shared = {**PROXIED, "rate_limit_backend": "redis", "redis_url": redis_url}
    limits = {"signup_per_network_per_minute": "2", "signup_per_network_per_day": "2"}
    replicas = [process_factory(**shared, **limits) for _ in range(2)]
    network = ipv6_network()
    statuses = []
    for host in range(1, 5):
        async with browser(replicas[host % 2].url, f"{network}::{host:x}") as client:
            statuses.append((await sign_up(client, new_email())).status_code)
    assert statuses == [303, 303, 429, 429]


async def test_a_hundred_wrong_passwords_do_not_lock_the_owner_out(
    process_factory: ProcessFactory,
) -> None:
    server = process_factory(**PROXIED)
    email = new_email()
    async with browser(server.url, "198.51.100.7") as owner:
        assert (await sign_up(owner, email)).status_code == 303
    hashes_before = metric(server.url, "wasmwiz_password_hashes_total")
    started = time.monotonic()
    async with browser(server.url, "203.0.113.9") as attacker:
        statuses = [(await log_in(attacker, email, f"guess {i}")).status_code for i in range(100)]
    # A burst of 5, then one more every 12 s the guessing took (a slow machine's refill).
    refilled = int((time.monotonic() - started) // 12) + 1
    assert statuses[:5] == [401] * 5
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= 5 + refilled
    # Throttled attempts cost no argon2 work.
    hashed = metric(server.url, "wasmwiz_password_hashes_total") - hashes_before
    assert hashed == statuses.count(401)
    async with browser(server.url, "198.51.100.7") as owner:
        assert (await log_in(owner, email, PASSWORD)).status_code == 303
    # A new IPv6 address in the attacker's /64 is the same network: still refused.
    network = ipv6_network()
    async with browser(server.url, f"{network}::1") as attacker:
        for i in range(5):
            await log_in(attacker, email, f"guess {i}")
    async with browser(server.url, f"{network}::2") as attacker:
        assert (await log_in(attacker, email, PASSWORD)).status_code == 429
