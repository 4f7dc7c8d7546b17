"""The one place where errors become RFC 9457 problem-details responses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from wasmwiz.errors import AuthenticationRequired, ModuleRejected, WasmWizError
from wasmwiz.http_common.database_errors import (
    DATABASE_RETRY_AFTER_SECONDS,
    is_database_unavailable,
)
from wasmwiz.problem_codes import ProblemCode

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger(__name__)
security_log = logging.getLogger("wasmwiz.security")

_HTTP_CODES = {
    404: ProblemCode.NOT_FOUND,
    405: ProblemCode.METHOD_NOT_ALLOWED,
    413: ProblemCode.REQUEST_TOO_LARGE,
    415: ProblemCode.UNSUPPORTED_MEDIA_TYPE,
}


class JsonResponse(JSONResponse):
    """JSON that ends with a newline, so `curl …` leaves the shell prompt on its own line."""

    def render(self, content: Any) -> bytes:
        return super().render(content) + b"\n"


class ProblemResponse(JsonResponse):
    media_type = PROBLEM_MEDIA_TYPE


# A page for a browser that asked for one: the web adapter installs it (http_common cannot
# import web); it gets the status, the stable code and a sentence for a person.
HtmlErrorPage = Callable[[Request, int, str, str], Awaitable[Response]]
_HTTP_PAGE_DETAIL = {
    404: "There is no page at this address.",
    405: "This address takes a form sent from its page, not a visit: go back and use the button.",
}


def wants_html_page(request: Request) -> bool:
    """A browser's page request (it asks for text/html), not the API or a page's script."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not request.url.path.startswith("/api/")


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        # "about:blank": the title is the status phrase and `code` says what happened.
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    if extra:
        body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


def refusal_headers(exc: WasmWizError) -> dict[str, str]:
    """The headers a refusal is answered with, as a problem or as a page."""
    headers = dict(exc.headers)
    if isinstance(exc, AuthenticationRequired):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="wasmwiz"')
    if exc.status_code == 413:
        # The client may still be sending; closing the connection stops it, where
        # keeping it alive would mean reading the rest of an oversized body.
        headers["Connection"] = "close"
    if exc.retry_after is not None:
        headers.setdefault("Retry-After", str(exc.retry_after))
    return headers


def error_response(request: Request, exc: WasmWizError) -> ProblemResponse:
    headers = refusal_headers(exc)
    if exc.status_code in (401, 403):
        security_log.warning(
            "authentication refused: %s",
            exc.code,
            extra={"event": "auth_failure", "code": exc.code, "path": request.url.path},
        )
    elif isinstance(exc, ModuleRejected):
        security_log.info(
            "module rejected: %s",
            exc.code,
            extra={"event": "module_rejected", "code": exc.code, "path": request.url.path},
        )
    return problem_response(
        request,
        status=exc.status_code,
        code=exc.code,
        detail=exc.message,
        headers=headers,
        extra=exc.extra or None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, WasmWizError)
        return error_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        html_page: HtmlErrorPage | None = getattr(request.app.state, "html_error_page", None)
        if (
            html_page is not None
            and exc.status_code in _HTTP_PAGE_DETAIL
            and wants_html_page(request)
        ):
            page = await html_page(
                request, exc.status_code, code, _HTTP_PAGE_DETAIL[exc.status_code]
            )
            page.headers.update(exc.headers or {})
            return page
        return problem_response(
            request,
            status=exc.status_code,
            code=code,
            detail=str(exc.detail),
            headers=dict(exc.headers or {}),
        )

    async def on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, RequestValidationError)
        fields = [".".join(str(part) for part in error["loc"]) for error in exc.errors()]
        return problem_response(
            request,
            status=422,
            code=ProblemCode.INVALID_REQUEST,
            detail="The request is not valid: " + ", ".join(fields),
        )

    async def on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return problem_response(
            request,
            status=500,
            code=ProblemCode.INTERNAL_ERROR,
            detail="Something went wrong on our side; the request id identifies it in our logs.",
        )

    async def on_database_or_os_error(request: Request, exc: Exception) -> ProblemResponse:
        if not is_database_unavailable(exc):
            return await on_unexpected(request, exc)
        # An outage, not a bug: one line, no traceback, and the client may retry.
        logger.error("database unavailable on %s: %s", request.url.path, type(exc).__name__)
        retry_after = str(DATABASE_RETRY_AFTER_SECONDS)
        return problem_response(
            request,
            status=503,
            code=ProblemCode.DATABASE_UNAVAILABLE,
            detail="The database is unavailable; try again shortly.",
            headers={"Retry-After": retry_after},
        )

    app.add_exception_handler(WasmWizError, on_domain_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    # SQLAlchemy's errors, and the OSErrors asyncpg raises unwrapped while connecting.
    app.add_exception_handler(SQLAlchemyError, on_database_or_os_error)
    app.add_exception_handler(OSError, on_database_or_os_error)
    app.add_exception_handler(Exception, on_unexpected)
