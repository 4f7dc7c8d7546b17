"""The one place where errors become RFC 9457 problem-details responses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wasmwiz.errors import AuthenticationRequired, ModuleRejected, WasmWizError

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger(__name__)
security_log = logging.getLogger("wasmwiz.security")

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


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


def error_response(request: Request, exc: WasmWizError) -> ProblemResponse:
    headers = dict(exc.headers)
    if isinstance(exc, AuthenticationRequired):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="wasmwiz"')
    if exc.status_code == 413:
        # The client may still be sending; closing the connection stops it, where
        # keeping it alive would mean reading the rest of an oversized body.
        headers["Connection"] = "close"
    if exc.retry_after is not None:
        headers.setdefault("Retry-After", str(exc.retry_after))
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
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, WasmWizError)
        return error_response(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
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
            code="invalid_request",
            detail="The request is not valid: " + ", ".join(fields),
        )

    async def on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return problem_response(
            request,
            status=500,
            code="internal_error",
            detail="Something went wrong on our side; the request id identifies it in our logs.",
        )

    app.add_exception_handler(WasmWizError, on_domain_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
