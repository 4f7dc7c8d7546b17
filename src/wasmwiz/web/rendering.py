"""Templates and the one place where the web pages turn errors into responses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from wasmwiz.errors import AuthenticationRequired, WasmWizError
from wasmwiz.http_common.problems import error_response, refusal_headers
from wasmwiz.http_common.unit_of_work import UnitOfWorkRoute
from wasmwiz.web.viewer import LoginRequired, Viewer, get_viewer, set_presession_cookie

logger = logging.getLogger(__name__)

# autoescape is on for .html templates: every user-supplied string is escaped.
templates = Jinja2Templates(directory=str(files("wasmwiz.web") / "templates"))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


def _mib(value: int) -> str:
    return f"{value / (1024 * 1024):g} MiB"


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


templates.env.filters["when"] = _when
templates.env.filters["mib"] = _mib
templates.env.filters["ms"] = _ms


def render(
    request: Request,
    viewer: Viewer,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    no_store: bool = False,
) -> Response:
    values = {"viewer": viewer, "path": request.url.path, **(context or {})}
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    set_presession_cookie(request, response, viewer)
    if no_store:
        # A page showing a secret (a new API key) must not be kept in any cache.
        response.headers["Cache-Control"] = "no-store"
    return response


def redirect(url: str) -> RedirectResponse:
    """303: the browser follows a POST's redirect with a GET."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None) -> str:
    """A local path to go to after signing in; anything else (other sites) becomes /."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


class WebRoute(UnitOfWorkRoute):
    """Routes of the HTML pages: a refusal becomes a page (or JSON for the page's scripts),
    after the unit of work has rolled back."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                if _wants_json(request):
                    return error_response(
                        request, AuthenticationRequired("Your session has ended; sign in again.")
                    )
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                return redirect("/login?next=" + quote(target, safe="/"))
            except WasmWizError as exc:
                if _wants_json(request):
                    return error_response(request, exc)
                viewer = await get_viewer(request)
                page = render(
                    request,
                    viewer,
                    "error.html",
                    {"error": exc, "status": exc.status_code},
                    status_code=exc.status_code,
                )
                page.headers.update(refusal_headers(exc))  # Retry-After, among others
                return page

        return handle


@dataclass(frozen=True, slots=True)
class _PageError:
    message: str
    code: str


async def html_error_page(request: Request, status: int, code: str, message: str) -> Response:
    """The error page for a browser's request that no route answered (404, 405)."""
    viewer = await get_viewer(request)
    context = {"error": _PageError(message, code), "status": status}
    return render(request, viewer, "error.html", context, status_code=status)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "application/problem+json" in accept
