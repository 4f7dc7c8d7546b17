"""SIGNUP_MODE (open, invite, closed), invite codes, and answers that do not tell who has an
account: over real HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import httpx
import pytest

from tests.fixtures.app import TEST_SALT, ServerFactory
from tests.web.helpers import PASSWORD, csrf_from, log_in, new_email, page_csrf, sign_up
from wasmwiz.cli.main import main
from wasmwiz.persistence import Database
from wasmwiz.services.invites import create_invite

pytestmark = pytest.mark.anyio

INVITE = re.compile(r"^wwi_[A-Za-z0-9_-]{22}$", re.MULTILINE)


async def post_signup(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, invite: str | None = None
) -> httpx.Response:
    token = csrf_from((await client.get("/signup")).text)
    data = {"email": email, "password": password, "confirm": password, "csrf_token": token}
    if invite is not None:
        data["invite"] = invite
    return await client.post("/signup", data=data)


def hashes_done(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    match = re.search(r"^wasmwiz_password_hashes_total ([0-9.e+]+)$", text, re.MULTILINE)
    assert match
    return float(match.group(1))


async def test_closed_sign_up_refuses_everyone(server_factory: ServerFactory) -> None:
    server = server_factory(signup_mode="closed")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        page = await http.get("/signup")
        assert page.status_code == 200
        assert "Sign-up is closed" in page.text
        assert 'action="/signup"' not in page.text
        token = csrf_from((await http.get("/login")).text)
        response = await http.post(
            "/signup",
            data={
                "email": new_email(),
                "password": PASSWORD,
                "confirm": PASSWORD,
                "csrf_token": token,
            },
        )
    assert response.status_code == 403
    assert "Sign-up is closed on this server." in response.text


async def test_invite_codes_sign_up_once_each(
    server_factory: ServerFactory,
    migrated_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_database_url)
    monkeypatch.setenv("API_SALT", TEST_SALT)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "cli"))
    status = await anyio.to_thread.run_sync(main, ["invites", "create", "--count", "2"])
    assert status == 0
    codes = INVITE.findall(capsys.readouterr().out)
    assert len(codes) == 2

    server = server_factory(signup_mode="invite", signup_per_network_per_minute=20)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        page = await http.get("/signup")
        assert 'name="invite"' in page.text
        for invite in (None, "", "wwi_not-a-code"):
            refused = await post_signup(http, new_email(), invite=invite)
            assert refused.status_code == 400
            assert "This invite code is not valid" in refused.text
        assert (await post_signup(http, new_email(), invite=codes[0])).status_code == 303
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        reused = await post_signup(http, new_email(), invite=codes[0])
        assert reused.status_code == 400
        assert "has been used" in reused.text
        assert (await post_signup(http, new_email(), invite=f" {codes[1]} ")).status_code == 303


async def test_an_expired_invite_is_refused(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    database = Database(migrated_database_url)
    try:
        async with database.writer() as session:
            code = await create_invite(
                session,
                expires_in=timedelta(days=1),
                now=datetime.now(UTC) - timedelta(days=2),
            )
            await session.commit()
    finally:
        await database.dispose()
    server = server_factory(signup_mode="invite")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await post_signup(http, new_email(), invite=code)
    assert response.status_code == 400
    assert "has expired" in response.text


def _without(text: str, *secrets: str) -> str:
    for secret in secrets:
        text = text.replace(secret, "…")
    return re.sub(r'value="[0-9a-f]{64}"', 'value="…"', text)


async def test_sign_in_answers_the_same_for_unknown_and_known_emails(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    known, unknown = new_email(), new_email()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await sign_up(http, known)
        await http.post("/logout", data={"csrf_token": await page_csrf(http)})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        before = hashes_done(server.url)
        wrong = await log_in(http, known, "not the password at all")
        after_wrong = hashes_done(server.url)
        missing = await log_in(http, unknown, "not the password at all")
        after_missing = hashes_done(server.url)
    assert wrong.status_code == missing.status_code == 401
    assert _without(wrong.text, known) == _without(missing.text, unknown)
    # The same argon2 work either way (a decoy check for the unknown email), so the
    # time taken does not tell them apart either.
    assert after_wrong - before == after_missing - after_wrong == 1


async def test_sign_up_refusals_answer_the_same_for_unknown_and_known_emails(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(signup_mode="invite")
    known, unknown = new_email(), new_email()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        # Without a valid invite, nothing about accounts is looked at.
        for password in (PASSWORD, "short"):
            answers = [
                await post_signup(http, email, password, invite="wwi_guess")
                for email in (known, unknown)
            ]
            assert answers[0].status_code == answers[1].status_code == 400
            assert _without(answers[0].text, known) == _without(answers[1].text, unknown)


async def test_a_taken_email_costs_the_same_hashing_as_a_new_account(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    email = new_email()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        await sign_up(http, email)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        before = hashes_done(server.url)
        taken = await post_signup(http, email, "a different passphrase")
        after_taken = hashes_done(server.url)
        created = await post_signup(http, new_email(), "a different passphrase")
        after_created = hashes_done(server.url)
    assert taken.status_code == 400
    assert created.status_code == 303
    assert after_taken - before == after_created - after_taken == 1
