"""The HTML adapter: pages over the same services as the JSON API."""

from __future__ import annotations

from importlib.resources import files

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from wasmwiz.web import accounts, admin, keys, playground, usage, webhooks
from wasmwiz.web.rendering import html_error_page
from wasmwiz.web.viewer import enforce_csrf, spend_signed_in_request


def install_web(app: FastAPI) -> None:
    """Mount the pages and their static files (CSS, JS) on the app.

    Every page route's POST (PUT, PATCH, DELETE) needs the CSRF token, and every request
    of a signed-in user spends one of the account's request budget: both here, for all of
    them, before any route runs (tests/web/test_csrf_everywhere.py and
    tests/web/test_request_budget.py walk them)."""
    for module in (accounts, playground, keys, webhooks, usage, admin):
        app.include_router(
            module.router,
            dependencies=[Depends(enforce_csrf), Depends(spend_signed_in_request)],
        )
    static = files("wasmwiz.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), "static")
    app.state.html_error_page = html_error_page

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        # Browsers ask for it on every site whatever the pages' <link rel="icon"> says.
        return FileResponse(str(static / "favicon.svg"), media_type="image/svg+xml")


__all__ = ["install_web"]
