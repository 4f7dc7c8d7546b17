"""Sign up, sign in, sign out, passwords, cookies, CSRF and sign-in throttling, over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fixtures.app import LiveServer, ServerFactory
from tests.web.helpers import PASSWORD, csrf_from, log_in, new_email, page_csrf, sign_up

pytestmark = pytest.mark.anyio


@pytest.fixture
async def browser(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        yield http


@pytest.mark.parametrize("path", ["/", "/api-keys", "/usage", "/account", "/admin"])
async def test_pages_send_anonymous_visitors_to_sign_in(
    browser: httpx.AsyncClient, path: str
) -> None:
    response = await browser.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


async def test_sign_up_signs_in_with_a_safe_cookie(browser: httpx.AsyncClient) -> None:
    email = new_email()
    token = csrf_from((await browser.get("/signup")).text)
    response = await browser.post(
        "/signup",
        data={"email": email, "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("wasmwiz_session=")
    ).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain HTTP here; see the HTTPS test below
    page = await browser.get("/")
    assert page.status_code == 200
    assert email in page.text


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short", "short", "at least 10 characters"),
        (" " * 12, " " * 12, "only spaces"),
        (PASSWORD, PASSWORD + "x", "differ"),
    ],
)
async def test_sign_up_refuses_a_bad_password_in_words(
    browser: httpx.AsyncClient, password: str, confirm: str, message: str
) -> None:
    token = csrf_from((await browser.get("/signup")).text)
    response = await browser.post(
        "/signup",
        data={"email": new_email(), "password": password, "confirm": confirm, "csrf_token": token},
    )
    assert response.status_code == 400
    assert message in response.text.lower()
    assert "wasmwiz_session" not in response.headers.get("set-cookie", "")


async def test_signing_up_again_with_the_password_signs_in(
    browser: httpx.AsyncClient, live_server: LiveServer
) -> None:
    email = new_email()
    await sign_up(browser, email)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as other:
        await sign_up(other, email)  # 303 to /, as for a new account
        assert email in (await other.get("/")).text


async def test_a_taken_email_is_refused_without_saying_so(
    browser: httpx.AsyncClient, live_server: LiveServer
) -> None:
    email = new_email()
    await sign_up(browser, email)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as other:
        token = csrf_from((await other.get("/signup")).text)
        other_password = "someone else's passphrase"
        response = await other.post(
            "/signup",
            data={
                "email": email,
                "password": other_password,
                "confirm": other_password,
                "csrf_token": token,
            },
        )
    assert response.status_code == 400
    assert "No account can be made with this email and password" in response.text
    assert "exists" not in response.text
    assert "wasmwiz_session" not in response.headers.get("set-cookie", "")


async def test_sign_in_and_out(browser: httpx.AsyncClient, live_server: LiveServer) -> None:
    email = new_email()
    await sign_up(browser, email)
    token = await page_csrf(browser)
    out = await browser.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert (await browser.get("/")).status_code == 303

    wrong = await log_in(browser, email, "not the password")
    assert wrong.status_code == 401
    assert "The email or the password is wrong." in wrong.text
    unknown = await log_in(browser, new_email())
    assert unknown.status_code == 401
    assert "The email or the password is wrong." in unknown.text

    right = await log_in(browser, email.upper())
    assert right.status_code == 303
    assert (await browser.get("/usage")).status_code == 200


async def test_signing_out_ends_the_session_on_the_server(
    browser: httpx.AsyncClient, live_server: LiveServer
) -> None:
    await sign_up(browser, new_email())
    stolen = browser.cookies["wasmwiz_session"]
    await browser.post("/logout", data={"csrf_token": await page_csrf(browser)})
    async with httpx.AsyncClient(
        base_url=live_server.url, cookies={"wasmwiz_session": stolen}
    ) as thief:
        assert (await thief.get("/usage")).status_code == 303


async def test_sign_in_goes_only_to_local_pages(browser: httpx.AsyncClient) -> None:
    email = new_email()
    await sign_up(browser, email)
    await browser.post("/logout", data={"csrf_token": await page_csrf(browser)})
    for target, expected in [("/usage", "/usage"), ("//evil.example", "/"), ("https://x.y", "/")]:
        token = csrf_from((await browser.get("/login")).text)
        response = await browser.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert response.headers["location"] == expected
        await browser.post("/logout", data={"csrf_token": await page_csrf(browser)})


async def test_changing_the_password_signs_out_other_browsers(
    browser: httpx.AsyncClient, live_server: LiveServer
) -> None:
    email = new_email()
    await sign_up(browser, email)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as other:
        assert (await log_in(other, email)).status_code == 303
        token = await page_csrf(browser, "/account")
        new_password = "an even longer passphrase"
        wrong = await browser.post(
            "/account/password",
            data={
                "current": "wrong password!",
                "password": new_password,
                "confirm": new_password,
                "csrf_token": token,
            },
        )
        assert wrong.status_code == 400
        assert "current password is wrong" in wrong.text
        changed = await browser.post(
            "/account/password",
            data={
                "current": PASSWORD,
                "password": new_password,
                "confirm": new_password,
                "csrf_token": token,
            },
        )
        assert changed.status_code == 200
        assert "Your password is changed" in changed.text
        assert (await other.get("/usage")).status_code == 303
        assert (await browser.get("/usage")).status_code == 200
        await other.post(
            "/logout", data={"csrf_token": csrf_from((await other.get("/login")).text)}
        )
        assert (await log_in(other, email, PASSWORD)).status_code == 401
        assert (await log_in(other, email, new_password)).status_code == 303


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/signup", {"email": "a@example.com", "password": PASSWORD, "confirm": PASSWORD}),
        ("/login", {"email": "a@example.com", "password": PASSWORD}),
        ("/logout", {}),
        ("/generate-key", {"name": "x"}),
        ("/account/password", {"current": PASSWORD, "password": "x" * 12, "confirm": "x" * 12}),
    ],
)
@pytest.mark.parametrize("token", [None, "0" * 64], ids=["missing", "forged"])
async def test_forms_without_a_valid_csrf_token_are_refused(
    browser: httpx.AsyncClient,
    path: str,
    data: dict[str, str],
    token: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await sign_up(browser, new_email())
    if token is not None:
        data = {**data, "csrf_token": token}
    with caplog.at_level(logging.WARNING, logger="wasmwiz.security"):
        response = await browser.post(path, data=data)
    assert response.status_code == 403
    assert "csrf_failed" in response.text
    assert any(getattr(r, "event", None) == "csrf_failure" for r in caplog.records)
    # Still signed in: a refused logout did nothing.
    assert (await browser.get("/usage")).status_code == 200


async def test_a_token_from_another_browser_is_refused(
    browser: httpx.AsyncClient, live_server: LiveServer
) -> None:
    await sign_up(browser, new_email())
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as attacker:
        await sign_up(attacker, new_email())
        attackers_token = await page_csrf(attacker)
    response = await browser.post(
        "/generate-key", data={"name": "x", "csrf_token": attackers_token}
    )
    assert response.status_code == 403


async def test_sign_in_is_throttled_per_account(server_factory: ServerFactory) -> None:
    server = server_factory(login_attempts_per_minute=3, login_attempts_per_ip_per_minute=100)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        email = new_email()
        await sign_up(http, email)
        await http.post("/logout", data={"csrf_token": await page_csrf(http)})
        statuses = [(await log_in(http, email, "wrong password")).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        throttled = await log_in(http, email)  # even the right password, for now
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert "Too many sign-in attempts" in throttled.text
        # Another account from the same address is not affected.
        other = new_email()
        await sign_up(http, other)
        await http.post("/logout", data={"csrf_token": await page_csrf(http)})
        assert (await log_in(http, other)).status_code == 303


async def test_sign_in_is_throttled_per_address(server_factory: ServerFactory) -> None:
    server = server_factory(login_attempts_per_minute=100, login_attempts_per_ip_per_minute=4)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        statuses = [
            (await log_in(http, new_email(), "guess password")).status_code for _ in range(5)
        ]
    assert statuses == [401, 401, 401, 401, 429]


async def test_cookies_are_secure_over_https(server_factory: ServerFactory) -> None:
    server = server_factory(trusted_proxies="127.0.0.1")
    headers = {"X-Forwarded-Proto": "https"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        page = await http.get("/signup")
        presession = page.headers["set-cookie"]
        assert "secure" in presession.lower()
        # httpx keeps Secure cookies for https:// URLs only; the proxy's hop is plain HTTP.
        response = await http.post(
            "/signup",
            headers={"Cookie": presession.split(";")[0]},
            data={
                "email": new_email(),
                "password": PASSWORD,
                "confirm": PASSWORD,
                "csrf_token": csrf_from(page.text),
            },
        )
    session_cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("wasmwiz_session=")
    ).lower()
    assert "secure" in session_cookie
    assert "httponly" in session_cookie
