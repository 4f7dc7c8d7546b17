"""The domain error tree: every refusal the service can give, each with a stable code.

    WasmWizError                      code                      status
    ├── InvalidRequest                missing_wasm, invalid_args, 400
    │                                 invalid_env, invalid_form,
    │                                 invalid_encoding, invalid_field,
    │                                 invalid_email, invalid_name,
    │                                 invalid_expiry, invalid_tier,
    │                                 weak_password, passwords_differ,
    │                                 wrong_password,
    │                                 invalid_deterministic,
    │                                 invalid_seed, invalid_max_fuel
    ├── PayloadTooLarge               wasm_too_large,            413
    │                                 input_too_large, request_too_large
    ├── RequestTimeout                request_timeout            408
    ├── ModuleRejected                invalid_wasm, invalid_wat, 422
    │                                 truncated_wasm, empty_wasm,
    │                                 component_not_supported,
    │                                 unsupported_import, missing_start,
    │                                 unsupported_feature,
    │                                 declared_memory_too_large,
    │                                 declared_table_too_large,
    │                                 too_many_functions, too_many_locals,
    │                                 function_too_large,
    │                                 too_many_data_segments,
    │                                 compile_timeout, compile_memory_limit
    ├── AuthenticationRequired        unauthorized,              401
    │                                 invalid_credentials
    ├── PermissionDenied              forbidden, csrf_failed,    403
    │                                 account_deactivated
    ├── NotFound                      not_found                  404
    ├── Conflict                      conflict, email_taken      409
    ├── LimitExceeded                 rate_limited,              429
    │                                 daily_quota_exceeded,
    │                                 too_many_concurrent,
    │                                 too_many_login_attempts
    └── ServiceUnavailable            server_busy,               503
                                      rate_limiter_unavailable,
                                      shutting_down

Adapters turn these into responses in one place each (`http_common.problems`, the web pages);
services and the engine never build HTTP responses themselves.
"""

from __future__ import annotations

from collections.abc import Mapping


class WasmWizError(Exception):
    """Base of every expected refusal. `code` is stable and machine-readable."""

    status_code = 500
    default_code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.headers: dict[str, str] = dict(headers or {})
        self.retry_after = retry_after


class InvalidRequest(WasmWizError):
    status_code = 400
    default_code = "invalid_request"


class PayloadTooLarge(WasmWizError):
    status_code = 413
    default_code = "request_too_large"


class RequestTimeout(WasmWizError):
    status_code = 408
    default_code = "request_timeout"


class ModuleRejected(WasmWizError):
    status_code = 422
    default_code = "invalid_wasm"


class AuthenticationRequired(WasmWizError):
    status_code = 401
    default_code = "unauthorized"


class PermissionDenied(WasmWizError):
    status_code = 403
    default_code = "forbidden"


class NotFound(WasmWizError):
    status_code = 404
    default_code = "not_found"


class Conflict(WasmWizError):
    status_code = 409
    default_code = "conflict"


class LimitExceeded(WasmWizError):
    status_code = 429
    default_code = "rate_limited"


class ServiceUnavailable(WasmWizError):
    status_code = 503
    default_code = "server_busy"
