"""The domain error tree: every refusal the service can give, each with a stable code.

    WasmWizError                HTTP status   default code
    ├── InvalidRequest          400           invalid_request
    ├── InvalidParameter        422           invalid_request
    ├── PayloadTooLarge         413           request_too_large
    ├── RequestTimeout          408           request_timeout
    ├── ModuleRejected          422           invalid_wasm
    ├── AuthenticationRequired  401           unauthorized
    ├── PermissionDenied        403           forbidden
    ├── NotFound                404           not_found
    ├── Conflict                409           conflict
    ├── LimitExceeded           429           rate_limited
    └── ServiceUnavailable      503           server_busy

A refusal names what happened with a `code` from the registry, `wasmwiz.problem_codes`
(`ProblemCode`): the one list of codes, with their statuses and meanings.
Adapters turn these into responses in one place each (`http_common.problems`, the web pages);
services and the engine never build HTTP responses themselves.
"""

from __future__ import annotations

from collections.abc import Mapping

from wasmwiz.problem_codes import ProblemCode


class WasmWizError(Exception):
    """Base of every expected refusal. `code` is stable and machine-readable."""

    status_code = 500
    default_code: ProblemCode = ProblemCode.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: ProblemCode | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: int | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.headers: dict[str, str] = dict(headers or {})
        self.retry_after = retry_after
        # Members added to the problem body, e.g. `limit` on a 429: whose limit refused.
        self.extra: dict[str, object] = dict(extra or {})


class InvalidRequest(WasmWizError):
    status_code = 400
    default_code = ProblemCode.INVALID_REQUEST


class InvalidParameter(WasmWizError):
    """A query or path parameter the route's own checks refuse: as FastAPI's validation, 422."""

    status_code = 422
    default_code = ProblemCode.INVALID_REQUEST


class PayloadTooLarge(WasmWizError):
    status_code = 413
    default_code = ProblemCode.REQUEST_TOO_LARGE


class RequestTimeout(WasmWizError):
    status_code = 408
    default_code = ProblemCode.REQUEST_TIMEOUT


class ModuleRejected(WasmWizError):
    status_code = 422
    default_code = ProblemCode.INVALID_WASM


class AuthenticationRequired(WasmWizError):
    status_code = 401
    default_code = ProblemCode.UNAUTHORIZED


class PermissionDenied(WasmWizError):
    status_code = 403
    default_code = ProblemCode.FORBIDDEN


class NotFound(WasmWizError):
    status_code = 404
    default_code = ProblemCode.NOT_FOUND


class Conflict(WasmWizError):
    status_code = 409
    default_code = ProblemCode.CONFLICT


class LimitExceeded(WasmWizError):
    status_code = 429
    default_code = ProblemCode.RATE_LIMITED


class ServiceUnavailable(WasmWizError):
    status_code = 503
    default_code = ProblemCode.SERVER_BUSY
