"""A browser-like HTTP client for the pages: keeps cookies, reads CSRF tokens from forms."""

from __future__ import annotations

import re
import uuid

import httpx

from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import users as user_repository
from wasmwiz.services.accounts import AccountService

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
_PAGE_CSRF = re.compile(r'data-csrf="([0-9a-f]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html) or _PAGE_CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def new_email() -> str:
    return f"web-{uuid.uuid4().hex[:10]}@example.com"


async def sign_up(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
    token = csrf_from((await client.get("/signup")).text)
    response = await client.post(
        "/signup",
        data={"email": email, "password": password, "confirm": password, "csrf_token": token},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_from((await client.get("/login")).text)
    return await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )


async def page_csrf(client: httpx.AsyncClient, path: str = "/api-keys") -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return csrf_from(response.text)


async def make_admin(database_url: str, email: str) -> None:
    database = Database(database_url)
    try:
        async with database.session() as session:
            user = await AccountService().get_by_email(session, email)
            await user_repository.set_admin(session, user.id, True)
            await session.commit()
    finally:
        await database.dispose()
