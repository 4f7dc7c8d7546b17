"""The OpenAPI document: problem-details responses, rate-limit headers and examples.

Routes declare what is particular to them (`problem_responses(...)`, `EXECUTE_RESPONSES`);
FastAPI renders them with the routes' models, parameters and security. `build_openapi`
adds only what FastAPI cannot derive (its docstring says what): the problem details that
replace FastAPI's validation-error body, the refusals every authenticated route can give,
and examples holding nulls.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from wasmwiz.http_common.problems import PROBLEM_MEDIA_TYPE
from wasmwiz.problem_codes import ProblemCode

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem-details body. Match on `code`: it is stable; "
    "`detail` is for people and may be reworded.",
    "required": ["type", "title", "status", "detail", "code", "instance", "request_id"],
    "properties": {
        "type": {"type": "string", "description": "Always `about:blank`."},
        "title": {"type": "string", "description": "The HTTP status phrase."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "What went wrong, stable, for programs."},
        "instance": {"type": "string", "description": "The request path."},
        "request_id": {
            "type": ["string", "null"],
            "description": "Also in the `X-Request-ID` header and our logs.",
        },
    },
    "additionalProperties": True,
}

# A typical `detail` of every problem code a route can answer with, for the examples; the
# status comes from the registry (wasmwiz.problem_codes).
TYPICAL_DETAILS: dict[ProblemCode, str] = {
    ProblemCode.JOB_NOT_FOUND: "No job of this account by that id.",
    ProblemCode.JOB_NOT_CANCELLABLE: "The job is running: only a queued job can be cancelled.",
    ProblemCode.JOB_QUEUE_FULL: (
        "This account has 10 jobs waiting, its tier's most (10); wait for some to run or "
        "cancel them."
    ),
    ProblemCode.INVALID_CALLBACK_URL: "`callback_url` must be an http:// or https:// URL.",
    ProblemCode.WEBHOOK_NOT_FOUND: "No webhook endpoint of this account by that id.",
    ProblemCode.CONFLICT: "The resource changed meanwhile; retry.",
    ProblemCode.WEBHOOK_URL_REFUSED: (
        "The host hooks.example resolves to 10.0.0.5, a loopback or private address: not called."
    ),
    ProblemCode.INVALID_WEBHOOK_EVENTS: (
        "Unknown event 'job.done'; the events are: job.finished, job.failed, quota.warning, "
        "key.created, key.revoked, endpoint.disabled."
    ),
    ProblemCode.TOO_MANY_WEBHOOKS: (
        "This account has 10 webhook endpoints, the most allowed; delete one first."
    ),
    ProblemCode.MISSING_WASM: (
        "Send the module in the `wasm` field (a .wasm binary or .wat text file), or name a "
        "stored one in `module`."
    ),
    ProblemCode.WASM_AND_MODULE: (
        "Send the module in `wasm` or name a stored one in `module`, not both."
    ),
    ProblemCode.INVALID_MODULE_REFERENCE: (
        "`module` must be a stored module's id (`sha256:` and 64 lowercase hex digits), "
        "one of your names for it (1 to 64 of a-z 0-9 . _ -), or a public runtime's name "
        "(`lua`, `lua@5.4.8`)."
    ),
    ProblemCode.MODULE_NOT_FOUND: "No stored module 'grader' in this account.",
    ProblemCode.INVALID_CASES: "Case 3: `args` must be a JSON array of strings.",
    ProblemCode.INVALID_MODULE_NAME: (
        "A module name needs 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit."
    ),
    ProblemCode.STORAGE_QUOTA_EXCEEDED: (
        "This account keeps 10 stored modules, its tier's most (10); delete one first."
    ),
    ProblemCode.INVALID_ARGS: "`args` must be a JSON array of strings.",
    ProblemCode.INVALID_ENV: "`env` must be a JSON object whose values are strings.",
    ProblemCode.INVALID_DETERMINISTIC: "`deterministic` must be true or false.",
    ProblemCode.INVALID_CACHE: "`cache` must be true or false.",
    ProblemCode.INVALID_SEED: "`seed` must be an integer from 0 to 18446744073709551615.",
    ProblemCode.INVALID_MAX_FUEL: "`max_fuel` must be an integer from 1 to 18446744073709551615.",
    ProblemCode.UNKNOWN_FIELD: (
        "Unknown form field 'stdin'; the fields are: args, deterministic, env, input, "
        "max_fuel, seed, wasm."
    ),
    ProblemCode.INVALID_FORM: (
        "The multipart body could not be parsed: Expected boundary character 45, got 103 at index 2"
    ),
    ProblemCode.UNSUPPORTED_MEDIA_TYPE: "Send the request as multipart/form-data.",
    ProblemCode.INVALID_NAME: "A key name needs 1 to 100 characters.",
    ProblemCode.INVALID_EXPIRY: "The expiry must be in the future.",
    ProblemCode.INVALID_SCOPE: "Unknown scope 'exec'; the scopes are: execute, usage:read, ...",
    ProblemCode.INVALID_KEY_LIMIT: (
        "A key's own per-minute limit must be from 1 to the account's (10)."
    ),
    ProblemCode.BULK_REFUSED: (
        "1 of 3 items of this bulk revoke were refused, so no key changed; the first, "
        "0b7e2a9c-5f3d-4c1e-9a8b-2d4f6e8a0c1b: No such API key."
    ),
    ProblemCode.INVALID_TIER: "There is no tier named 'gold'.",
    ProblemCode.UNAUTHORIZED: "Send your API key as `Authorization: Bearer <key>`.",
    ProblemCode.FORBIDDEN: "This account is deactivated.",
    ProblemCode.INSUFFICIENT_SCOPE: (
        "This API key lacks the `keys:write` scope; create a key with it (web page API "
        "keys, or POST /api/v1/keys)."
    ),
    ProblemCode.NOT_FOUND: "No such API key.",
    ProblemCode.KEY_LIMIT_REACHED: (
        "Your account has 5 working keys, the most the free tier allows; revoke one first."
    ),
    ProblemCode.TIER_EXISTS: "A tier named 'team' exists already.",
    ProblemCode.REQUEST_TIMEOUT: "The request body was not received in time.",
    ProblemCode.WASM_TOO_LARGE: "The module is larger than the limit of 10485760 bytes.",
    ProblemCode.INPUT_TOO_LARGE: "The input is larger than the limit of 1048576 bytes.",
    ProblemCode.REQUEST_TOO_LARGE: (
        "The request body (20000000 bytes) is larger than the limit of 11730944 bytes."
    ),
    ProblemCode.INVALID_REQUEST: "The request is not valid: query.encoding",
    ProblemCode.INVALID_USAGE_QUERY: "`from` must come before `to`.",
    ProblemCode.EMPTY_WASM: "the module is empty",
    ProblemCode.INVALID_WASM: "neither a WebAssembly binary nor UTF-8 WebAssembly text",
    ProblemCode.TRUNCATED_WASM: "the binary ends unexpectedly",
    ProblemCode.INVALID_WAT: "expected `)`",
    ProblemCode.COMPONENT_NOT_SUPPORTED: (
        "component-model binaries are not supported; submit a WASI preview 1 core module"
    ),
    ProblemCode.UNSUPPORTED_IMPORT: "import env.foo is not a WASI preview 1 function",
    ProblemCode.MISSING_START: "the module exports no `_start` function",
    ProblemCode.MISSING_MEMORY_EXPORT: (
        "the module imports WASI functions but exports no memory named `memory`; WASI "
        "preview 1 needs it (a toolchain exports it unless told not to)"
    ),
    ProblemCode.UNSUPPORTED_FEATURE: (
        "the function-references proposal is not enabled on this server: function "
        "references support is not enabled (at offset 0x30)"
    ),
    ProblemCode.DECLARED_MEMORY_TOO_LARGE: (
        "the module declares at least 4096 pages of memory; the limit is 2048"
    ),
    ProblemCode.DECLARED_TABLE_TOO_LARGE: "a table declares at least 1000000 elements",
    ProblemCode.TOO_MANY_FUNCTIONS: "the module has more functions than the limit",
    ProblemCode.TOO_MANY_LOCALS: "a function declares more locals than the limit",
    ProblemCode.FUNCTION_TOO_LARGE: "a function body is larger than the limit",
    ProblemCode.TOO_MANY_DATA_SEGMENTS: "the module has more data segments than the limit",
    ProblemCode.TOO_MANY_TYPES: "the module declares 4294967295 types; the limit is 16",
    ProblemCode.TOO_MANY_IMPORTS: "the module declares 4294967295 imports; the limit is 16",
    ProblemCode.TOO_MANY_EXPORTS: "the module declares 4294967295 exports; the limit is 16",
    ProblemCode.TOO_MANY_MEMORIES: "the module declares 4294967295 memories; the limit is 16",
    ProblemCode.TOO_MANY_TABLES: "the module declares 4294967295 tables; the limit is 16",
    ProblemCode.COMPILE_TIMEOUT: "compiling the module took longer than the limit",
    ProblemCode.COMPILE_MEMORY_LIMIT: "compiling the module needed more memory than the limit",
    ProblemCode.RATE_LIMITED: (
        "More than 10 executions a minute (your account's limit); retry in 6 s."
    ),
    ProblemCode.DAILY_QUOTA_EXCEEDED: (
        "The daily quota of 500 executions (your account's limit) is used up; it resets at "
        "00:00 UTC."
    ),
    ProblemCode.TOO_MANY_CONCURRENT: (
        "Your account already has 2 executions in flight (the account's limit); wait for "
        "one to finish."
    ),
    ProblemCode.KEY_CREATION_RATE_LIMITED: (
        "Your account may create 5 keys a minute; retry in 12 s."
    ),
    ProblemCode.API_RATE_LIMITED: "Your account may make 600 API calls a minute; retry in 1 s.",
    ProblemCode.COMPILE_BUDGET_EXCEEDED: (
        "This account has used its 20 seconds a minute of compiling new modules; retry in "
        "9 s (modules already compiled still run)."
    ),
    ProblemCode.SERVER_BUSY: "Every execution slot is busy; try again shortly.",
    ProblemCode.RATE_LIMITER_UNAVAILABLE: (
        "Rate limiting is temporarily unavailable; try again shortly."
    ),
    ProblemCode.SHUTTING_DOWN: "The server is shutting down.",
    ProblemCode.DATABASE_UNAVAILABLE: "The database is unavailable; try again shortly.",
    ProblemCode.INTERNAL_ERROR: (
        "Something went wrong on our side; the request id identifies it in our logs."
    ),
}


_BULK_IDS = (
    "1d540a36-2e9a-4de2-9d6d-5c03e36fd858",
    "0b7e2a9c-5f3d-4c1e-9a8b-2d4f6e8a0c1b",
    "9a3c5e7f-1b2d-4f6a-8c0e-2a4c6e8f0b1d",
)
_BULK_DONE = {"ok": True, "changed": True, "code": None, "detail": None}
# Members a code's problem carries besides the standard ones, for its examples.
TYPICAL_MEMBERS: dict[ProblemCode, dict[str, Any]] = {
    ProblemCode.BULK_REFUSED: {
        "action": "revoke",
        "items": [
            {"id": _BULK_IDS[0], **_BULK_DONE},
            {
                "id": _BULK_IDS[1],
                "ok": False,
                "changed": False,
                "code": "not_found",
                "detail": "No such API key.",
            },
            {"id": _BULK_IDS[2], **_BULK_DONE},
        ],
    },
}


def _header(description: str, schema_type: str = "integer") -> dict[str, Any]:
    return {"description": description, "schema": {"type": schema_type}}


RATE_LIMIT_HEADERS: dict[str, Any] = {
    "X-RateLimit-Limit": _header("The per-minute limit (the token bucket's capacity)."),
    "X-RateLimit-Remaining": _header("Whole tokens left after this request."),
    "X-RateLimit-Reset": _header(
        "Seconds (a delta, rounded up) until at least one token is available; 0 if one is now."
    ),
    "X-RateLimit-Daily-Limit": _header("The per-day quota."),
    "X-RateLimit-Daily-Remaining": _header("Requests left today after this one."),
    "X-RateLimit-Daily-Reset": _header("Seconds (rounded up) until 00:00 UTC."),
    "X-RateLimit-Scope": _header(
        "Whose limit the figures are: `account` (shared by all its keys and the web pages) "
        "or `key` (the key's own lower limit). On a 429, the limit that refused; otherwise "
        "the one with fewer requests left this minute.",
        "string",
    ),
}
# The runs: admitted by the tier's limits, not the API budget (api.dependencies.Runner).
RUN_PATHS = frozenset({"/api/v1/execute", "/execute", "/api/v1/execute/batch"})

RETRY_AFTER_HEADER: dict[str, Any] = {
    "Retry-After": _header("Whole seconds (at least 1) to wait before retrying.")
}
REQUEST_ID_HEADER: dict[str, Any] = {
    "X-Request-ID": _header("Identifies the request in our logs.", "string")
}


def problem_example(
    code: ProblemCode, instance: str = "/api/v1/execute", detail: str | None = None
) -> dict[str, Any]:
    status, typical = code.status, TYPICAL_DETAILS[code]
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or typical,
        "code": str(code),
        "instance": instance,
        "request_id": "5f0c1e0b8c4d4e51a3d2f0f3b1c2d3e4",
        **TYPICAL_MEMBERS.get(code, {}),
    }


def problem_responses(
    *codes: ProblemCode,
    instance: str = "/api/v1/execute",
    details: dict[ProblemCode, str] | None = None,
) -> dict[int | str, Any]:
    """The `responses` entries for these problem codes, grouped by status, one example each.

    `details` overrides the typical `detail` of a code where this route words it otherwise.
    """
    details = details or {}
    by_status: dict[int, list[ProblemCode]] = {}
    for code in codes:
        by_status.setdefault(code.status, []).append(code)
    responses: dict[int | str, Any] = {}
    for status, status_codes in sorted(by_status.items()):
        names = ", ".join(f"`{code}`" for code in status_codes)
        responses[status] = {
            "description": f"{HTTPStatus(status).phrase}: {names}.",
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": PROBLEM_REF,
                    "examples": {
                        str(code): {
                            "summary": str(code),
                            "value": problem_example(code, instance, details.get(code)),
                        }
                        for code in status_codes
                    },
                }
            },
        }
    return responses


def _execution_example(status: str, **fields: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "execution_id": "0b9f7e4e-3f5d-4c4b-9a43-2f1c1bd0c0a1",
        "status": status,
        "output": "Hello, WasmWiz!\n",
        "error": None,
        "stderr": "",
        "exit_code": 0,
        "duration_ms": 0.412,
        "fuel_consumed": None,  # no fuel budget: not metered
        "fuel_consumed_is_lower_bound": False,
        "memory_peak_bytes": 65536,
        "output_truncated": False,
        "stderr_truncated": False,
        "encoding": "utf-8",
        "cached": False,
    }
    value.update(fields)
    return {"summary": status, "value": value}


_EXECUTION_EXAMPLES: dict[str, Any] = {
    "success": _execution_example("success"),
    "exit_nonzero": _execution_example(
        "exit_nonzero",
        output="",
        stderr="usage: grep PATTERN\n",
        exit_code=2,
        error="The program exited with code 2.",
    ),
    "trap": _execution_example(
        "trap", output="", exit_code=None, error="wasm trap: wasm `unreachable` executed"
    ),
    "timeout": _execution_example(
        "timeout",
        output="",
        exit_code=None,
        duration_ms=5000.9,
        fuel_consumed=8400000000,  # a run with a fuel budget: counted, up to a lower bound
        fuel_consumed_is_lower_bound=True,
        error="The run passed the 5 s time limit.",
    ),
    "memory_limit": _execution_example(
        "memory_limit",
        output="",
        exit_code=None,
        memory_peak_bytes=134217728,
        error="The program failed after reaching the 128 MiB memory limit.",
    ),
    "stack_overflow": _execution_example(
        "stack_overflow", output="", exit_code=None, error="The call stack overflowed."
    ),
    "output_limit": _execution_example(
        "output_limit",
        output="yyyyyyyy…",
        exit_code=None,
        output_truncated=True,
        error="stdout reached the 1048576-byte limit.",
    ),
    "fuel_exhausted": _execution_example(
        "fuel_exhausted",
        output="",
        exit_code=None,
        fuel_consumed=1000000,
        error="The run used up its fuel budget.",
    ),
    "base64": _execution_example("success", output="SGVsbG8sIFdhc21XaXohCg==", encoding="base64"),
    "cached": {
        "summary": "cached (a deterministic request with a seed, again)",
        "value": _execution_example("success", cached=True)["value"],
    },
}

EXECUTE_RESPONSES: dict[int | str, Any] = {
    200: {
        "description": "The program ran. `status` says how it ended: a trap, a timeout or a "
        "limit is an outcome of the run, not an error.",
        "headers": {**RATE_LIMIT_HEADERS, **REQUEST_ID_HEADER},
    },
    **problem_responses(
        ProblemCode.MISSING_WASM,
        ProblemCode.WASM_AND_MODULE,
        ProblemCode.INVALID_MODULE_REFERENCE,
        ProblemCode.MODULE_NOT_FOUND,
        ProblemCode.INVALID_ARGS,
        ProblemCode.INVALID_ENV,
        ProblemCode.INVALID_DETERMINISTIC,
        ProblemCode.INVALID_SEED,
        ProblemCode.INVALID_MAX_FUEL,
        ProblemCode.INVALID_CACHE,
        ProblemCode.UNKNOWN_FIELD,
        ProblemCode.INVALID_FORM,
        ProblemCode.UNSUPPORTED_MEDIA_TYPE,
        ProblemCode.REQUEST_TIMEOUT,
        ProblemCode.WASM_TOO_LARGE,
        ProblemCode.INPUT_TOO_LARGE,
        ProblemCode.REQUEST_TOO_LARGE,
        ProblemCode.INVALID_REQUEST,
        ProblemCode.EMPTY_WASM,
        ProblemCode.INVALID_WASM,
        ProblemCode.TRUNCATED_WASM,
        ProblemCode.INVALID_WAT,
        ProblemCode.COMPONENT_NOT_SUPPORTED,
        ProblemCode.UNSUPPORTED_IMPORT,
        ProblemCode.MISSING_START,
        ProblemCode.MISSING_MEMORY_EXPORT,
        ProblemCode.UNSUPPORTED_FEATURE,
        ProblemCode.DECLARED_MEMORY_TOO_LARGE,
        ProblemCode.DECLARED_TABLE_TOO_LARGE,
        ProblemCode.TOO_MANY_FUNCTIONS,
        ProblemCode.TOO_MANY_LOCALS,
        ProblemCode.FUNCTION_TOO_LARGE,
        ProblemCode.TOO_MANY_DATA_SEGMENTS,
        ProblemCode.TOO_MANY_TYPES,
        ProblemCode.TOO_MANY_IMPORTS,
        ProblemCode.TOO_MANY_EXPORTS,
        ProblemCode.TOO_MANY_MEMORIES,
        ProblemCode.TOO_MANY_TABLES,
        ProblemCode.COMPILE_TIMEOUT,
        ProblemCode.COMPILE_MEMORY_LIMIT,
        ProblemCode.RATE_LIMITED,
        ProblemCode.DAILY_QUOTA_EXCEEDED,
        ProblemCode.TOO_MANY_CONCURRENT,
        ProblemCode.COMPILE_BUDGET_EXCEEDED,
        ProblemCode.SERVER_BUSY,
        ProblemCode.RATE_LIMITER_UNAVAILABLE,
        ProblemCode.SHUTTING_DOWN,
    ),
}
BATCH_RESPONSES: dict[int | str, Any] = {
    200: {
        "description": "Every case ran (or ran out of the batch's time): one result each.",
        "headers": {**RATE_LIMIT_HEADERS, **REQUEST_ID_HEADER},
    },
    **problem_responses(
        ProblemCode.MISSING_WASM,
        ProblemCode.WASM_AND_MODULE,
        ProblemCode.INVALID_MODULE_REFERENCE,
        ProblemCode.INVALID_CASES,
        ProblemCode.INVALID_DETERMINISTIC,
        ProblemCode.INVALID_SEED,
        ProblemCode.INVALID_MAX_FUEL,
        ProblemCode.UNKNOWN_FIELD,
        ProblemCode.INVALID_FORM,
        ProblemCode.UNSUPPORTED_MEDIA_TYPE,
        ProblemCode.MODULE_NOT_FOUND,
        ProblemCode.REQUEST_TIMEOUT,
        ProblemCode.WASM_TOO_LARGE,
        ProblemCode.INPUT_TOO_LARGE,
        ProblemCode.REQUEST_TOO_LARGE,
        ProblemCode.INVALID_REQUEST,
        ProblemCode.INVALID_WASM,
        ProblemCode.INVALID_WAT,
        ProblemCode.UNSUPPORTED_IMPORT,
        ProblemCode.MISSING_START,
        ProblemCode.COMPILE_TIMEOUT,
        ProblemCode.RATE_LIMITED,
        ProblemCode.DAILY_QUOTA_EXCEEDED,
        ProblemCode.TOO_MANY_CONCURRENT,
        ProblemCode.COMPILE_BUDGET_EXCEEDED,
        ProblemCode.SERVER_BUSY,
        ProblemCode.RATE_LIMITER_UNAVAILABLE,
        ProblemCode.SHUTTING_DOWN,
        instance="/api/v1/execute/batch",
    ),
}
BATCH_RESPONSES[429]["headers"] = {**RATE_LIMIT_HEADERS, **RETRY_AFTER_HEADER}
BATCH_RESPONSES[503]["headers"] = dict(RETRY_AFTER_HEADER)
EXECUTE_RESPONSES[429]["headers"] = {**RATE_LIMIT_HEADERS, **RETRY_AFTER_HEADER}
EXECUTE_RESPONSES[503]["headers"] = dict(RETRY_AFTER_HEADER)
# A module refused by the sandbox was admitted first: the budgets it spent are reported.
EXECUTE_RESPONSES[413]["headers"] = dict(RATE_LIMIT_HEADERS)
EXECUTE_RESPONSES[422]["headers"] = dict(RATE_LIMIT_HEADERS)


_KEY = {
    "id": "1d540a36-2e9a-4de2-9d6d-5c03e36fd858",
    "name": "ci",
    "prefix": "ww_zYjQeyI5",
    "created_at": "2026-11-29T20:25:46.212298Z",
    "last_used_at": None,
    "expires_at": None,
    "revoked_at": None,
    "status": "active",
    "scopes": ["execute", "usage:read"],
    "requests_per_minute": None,
    "requests_per_day": None,
    "max_concurrent_executions": None,
}
_TIER = {
    "name": "free",
    "requests_per_minute": 10,
    "requests_per_day": 500,
    "max_concurrent_executions": 2,
    "max_fuel": None,
    "max_api_keys": 5,
    "compile_seconds_per_minute": 60,
    "max_stored_modules": 100,
    "max_stored_module_bytes": 524288000,
    "job_timeout_seconds": 5,
    "max_queued_jobs": 10,
    "job_result_seconds": 3600,
    "api_requests_per_minute": None,
    "api_requests_per_day": None,
}
_USER = {
    "id": "7c1f0c56-8f3e-4d43-b2a4-6f0d2b8e9a11",
    "email": "ada@example.com",
    "tier": "free",
    "is_active": True,
    "is_admin": False,
    "created_at": "2026-11-29T20:25:46Z",
}
_HEALTHY = {
    "status": "ok",
    "checks": [
        {"name": "database", "ok": True, "detail": None},
        {"name": "temp_dir", "ok": True, "detail": None},
        {"name": "sandbox", "ok": True, "detail": None},
        {"name": "rate_limiter", "ok": True, "detail": None},
    ],
}
_RECENT_RUN = {
    "execution_id": "0b9f7e4e-3f5d-4c4b-9a43-2f1c1bd0c0a1",
    "created_at": "2026-11-29T20:25:46Z",
    "status": "success",
    "duration_ms": 0.412,
    "module_sha256": "9f2c6a0d5e1b4f7a8c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b",
    "via_api_key": True,
    "api_key_id": "1d540a36-2e9a-4de2-9d6d-5c03e36fd858",
    "api_key_name": "ci",
    "cached": False,
}
_USAGE_ROW = {
    "group": "2026-11-29",
    "name": None,
    "executions": 42,
    "outcomes": {"success": 40, "timeout": 2},
    "cached": 3,
    "wall_time_ms": 2150.5,
    "fuel_consumed": 1200000,
    "memory_peak_bytes_max": 1114112,
    "input_bytes": 840,
    "output_bytes": 5120,
    "stderr_bytes": 0,
}
_USAGE_TABLE = {
    "group_by": "day",
    "from": "2026-11-01T00:00:00Z",
    "to": "2026-12-01T00:00:00Z",
    "key_id": None,
    "user_id": "6a1f0c1e-7d2b-4d0c-9e57-0b1c2d3e4f50",
    "items": [_USAGE_ROW],
    "next_cursor": None,
}
_USAGE_CSV = (
    "day,executions,cached,outcome_success,outcome_exit_nonzero,outcome_trap,"
    "outcome_timeout,outcome_memory_limit,outcome_stack_overflow,outcome_output_limit,"
    "outcome_fuel_exhausted,wall_time_ms,fuel_consumed,memory_peak_bytes_max,input_bytes,"
    "output_bytes,stderr_bytes\r\n"
    "2026-11-29,42,3,40,0,0,2,0,0,0,0,2150.5,1200000,1114112,840,5120,0\r\n"
)
_STORED_MODULE = {
    "id": "sha256:9f2c6a0d5e1b4f7a8c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b",
    "size": 1342,
    "created_at": "2026-12-04T20:25:46Z",
    "names": ["grader"],
    "imports": [{"module": "wasi_snapshot_preview1", "name": "fd_write", "kind": "func"}],
    "exports": [{"name": "memory", "kind": "memory"}, {"name": "_start", "kind": "func"}],
    "is_command": True,
}
_RUNTIME = {
    "name": "lua",
    "version": "5.4.8",
    "id": "sha256:5c5d39b9af5fa9dfba516a6cc438fb8d24a88d45d567039cabc0c87aed25903f",
    "language": "Lua",
    "usage": "stdin",
    "size": 311749,
    "license": "MIT",
    "published_at": "2026-12-04T20:25:46Z",
    "latest": True,
}
_JOB = {
    "id": "8c2f7e1a-5b3d-4e6f-9a0b-1c2d3e4f5a6b",
    "state": "finished",
    "created_at": "2026-12-05T10:00:00Z",
    "started_at": "2026-12-05T10:00:00.050000Z",
    "finished_at": "2026-12-05T10:00:00.120000Z",
    "expires_at": "2026-12-12T10:00:00.120000Z",
    "attempts": 1,
    "timeout_seconds": 60.0,
    "callback_url": None,
    "result": _EXECUTION_EXAMPLES["success"]["value"],
    "error": None,
}
_QUEUED_JOB = {
    **_JOB,
    "state": "queued",
    "started_at": None,
    "finished_at": None,
    "expires_at": None,
    "attempts": 0,
    "callback_url": "https://grader.example.com/hooks/wasmwiz",
    "result": None,
}
_WEBHOOK = {
    "id": "3e1d2c4b-6a5f-4e7d-8c9b-0a1f2e3d4c5b",
    "url": "https://hooks.example.com/wasmwiz",
    "description": "grader",
    "events": ["job.finished", "job.failed"],
    "enabled": True,
    "created_at": "2026-12-05T09:00:00Z",
    "consecutive_failures": 0,
    "disabled_at": None,
    "disabled_reason": None,
}
_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 (an example in the docs)
_DELIVERY = {
    "id": "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
    "event_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "event_type": "job.finished",
    "state": "succeeded",
    "attempts": 3,
    "created_at": "2026-12-05T10:00:00.130000Z",
    "next_attempt_at": None,
    "last_attempt_at": "2026-12-05T10:05:05Z",
    "last_status": 204,
    "last_error": None,
}
_JOB_ERROR = {"code": "unsupported_import", "detail": "import env.foo is not a WASI function"}
# Examples of the response schemas, by component name (JSON Schema `examples`).
SCHEMA_EXAMPLES: dict[str, list[Any]] = {
    "JobResponse": [
        _QUEUED_JOB,
        _JOB,
        {**_JOB, "result": None, "state": "failed", "error": _JOB_ERROR},
    ],
    "JobPage": [{"items": [_JOB], "next_cursor": None}],
    "WebhookEndpointOut": [_WEBHOOK],
    "WebhookEndpointWithSecret": [{**_WEBHOOK, "secret": _SECRET}],
    "WebhookEndpointPage": [{"items": [_WEBHOOK], "next_cursor": None}],
    "WebhookEndpointCreate": [{"url": _WEBHOOK["url"], "events": ["job.finished"]}],
    "WebhookEndpointUpdate": [{"enabled": False}, {"events": ["job.finished", "key.created"]}],
    "WebhookDeliveryOut": [_DELIVERY],
    "WebhookDeliveryPage": [{"items": [_DELIVERY], "next_cursor": None}],
    "CallbackSecret": [{"secret": _SECRET}],
    "JobError": [_JOB_ERROR],
    "ApiKeyOut": [_KEY],
    "ApiKeyPage": [{"items": [_KEY], "page": 1, "per_page": 20, "next_page": None}],
    "ApiKeyCreate": [
        {"name": "ci", "expires_at": "2027-01-01T00:00:00Z"},
        {"name": "nightly job", "scopes": ["execute"], "requests_per_minute": 2},
    ],
    "RevokedAll": [{"revoked": 3}],
    "BulkKeysRequest": [
        {"action": "revoke", "ids": list(_BULK_IDS)},
        {
            "action": "update",
            "ids": list(_BULK_IDS[:2]),
            "changes": {"scopes": ["execute"], "expires_at": "2027-01-01T00:00:00Z"},
        },
    ],
    "KeyChangesIn": [{"expires_at": None}, {"requests_per_minute": 5, "name": "ci"}],
    "BulkItemOut": [{"id": _BULK_IDS[0], **_BULK_DONE}],
    "BulkKeysResult": [
        {
            "action": "revoke",
            "changed": 2,
            "items": [
                {"id": _BULK_IDS[0], **_BULK_DONE},
                {"id": _BULK_IDS[1], **_BULK_DONE},
                {"id": _BULK_IDS[2], **_BULK_DONE, "changed": False},
            ],
        }
    ],
    "TierOut": [_TIER],
    "TierList": [{"items": [_TIER]}],
    "TierCreate": [
        {
            "name": "team",
            "requests_per_minute": 200,
            "requests_per_day": 20000,
            "max_concurrent_executions": 20,
            "max_api_keys": 50,
        }
    ],
    "TierChange": [{"requests_per_minute": 20}],
    "UserOut": [_USER],
    "UserPageOut": [{"items": [_USER], "page": 1, "per_page": 50, "total": 1, "next_page": None}],
    "UserChange": [{"tier": "pro"}, {"active": False}],
    "ApiKeyCreated": [{**_KEY, "key": "ww_zYjQeyI5t1oq_-K8vWFdcYXYPP5UcpIH4qFS2ERGa94"}],
    "HealthResponse": [
        _HEALTHY,
        {
            "status": "unavailable",
            "checks": [{"name": "database", "ok": False, "detail": "database check failed"}],
        },
    ],
    "HealthCheck": [{"name": "database", "ok": True, "detail": None}],
    "DayOut": [{"day": "2026-11-29", "executions": 42}],
    "RecentRunOut": [_RECENT_RUN],
    "UsageOut": [
        {
            "days": [
                {"day": "2026-11-28", "executions": 40},
                {"day": "2026-11-29", "executions": 2},
            ],
            "total": 42,
            "outcomes": {"success": 40, "timeout": 2},
            "median_duration_ms": 0.5,
            "p95_duration_ms": 4.2,
            "today": 2,
            "daily_quota": 500,
            "per_minute": 10,
            "max_concurrent": 2,
            "tier": "free",
            "recent": [_RECENT_RUN],
        }
    ],
    "UsageTableOut": [_USAGE_TABLE],
    "UsageRowOut": [_USAGE_ROW],
    "ExecutionResponse": [_EXECUTION_EXAMPLES["success"]["value"]],
    "BatchResponse": [
        {
            "batch_id": "4f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190",
            "results": [_EXECUTION_EXAMPLES["success"]["value"]],
        }
    ],
    "StoredModuleOut": [_STORED_MODULE],
    "RuntimeOut": [_RUNTIME],
    "RuntimeList": [{"items": [_RUNTIME]}],
    "StoredModulePage": [{"items": [_STORED_MODULE], "next_cursor": None}],
    "ModuleImportOut": [_STORED_MODULE["imports"][0]],  # type: ignore[index]
    "ModuleExportOut": [{"name": "_start", "kind": "func"}],
    "ModuleNameTarget": [{"module": _STORED_MODULE["id"]}],
    "Problem": [problem_example(ProblemCode.UNAUTHORIZED)],
}


def usage_responses(instance: str, *, summary: bool) -> dict[int | str, Any]:
    """The responses of a usage analytics route besides its JSON model: CSV with
    `format=csv`, and its refusals. `summary`: the route answers the dashboard's figures
    when given no parameter."""
    description = "With `format=csv`, the same rows as CSV."
    if summary:
        description = (
            "Without parameters, the dashboard's figures (`UsageOut`); with any, a page of "
            "groups (`UsageTableOut`). " + description
        )
    return {
        200: {
            "description": description,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _USAGE_CSV}},
            "headers": {
                "X-Next-Cursor": _header(
                    "With `format=csv`: the next page's `cursor`, if there is one.", "string"
                )
            },
        },
        **problem_responses(
            ProblemCode.INVALID_USAGE_QUERY, ProblemCode.INVALID_REQUEST, instance=instance
        ),
    }


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI 3.1 document for the app, with what FastAPI cannot derive.

    FastAPI renders the routes, their models and parameters, the execute form (from its
    model) and the Bearer scheme with each route's requirement (from the `authenticate`
    dependency). Added here: the problem-details schema for a media type FastAPI does not
    render models into; our `invalid_request` problem in place of FastAPI's validation-error
    body; the 500 every route can answer and the 401/403/503 every authenticated route can;
    and the examples with nulls in them (FastAPI drops the nulls from what it renders).
    """
    spec = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for name, examples in SCHEMA_EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = examples
    for path, path_item in spec.get("paths", {}).items():
        for operation in path_item.values():
            _complete(operation, path)
    return spec


def _complete(operation: dict[str, Any], path: str) -> None:
    responses = operation.get("responses", {})
    if "422" in responses and _is_fastapi_validation(responses["422"]):
        responses["422"] = problem_responses(ProblemCode.INVALID_REQUEST, instance=path)[422]
    responses.setdefault("500", problem_responses(ProblemCode.INTERNAL_ERROR, instance=path)[500])
    for response in responses.values():
        media = response.get("content", {}).get("application/json", {})
        # A choice of models (anyOf): an example of each, as each model has its own.
        choices = [ref.get("$ref", "") for ref in media.get("schema", {}).get("anyOf", [])]
        names = [ref.rsplit("/", 1)[-1] for ref in choices]
        if names and "examples" not in media:
            media["examples"] = {
                name: {"summary": name, "value": SCHEMA_EXAMPLES[name][0]}
                for name in names
                if name in SCHEMA_EXAMPLES
            }
        if media.get("schema", {}).get("$ref", "").endswith("/ExecutionResponse"):
            media["examples"] = _EXECUTION_EXAMPLES
    if "security" not in operation:
        return
    # Every authenticated route can refuse a key without its scope (api.dependencies).
    auth = problem_responses(
        ProblemCode.UNAUTHORIZED,
        ProblemCode.FORBIDDEN,
        ProblemCode.INSUFFICIENT_SCOPE,
        instance=path,
    )
    auth[401]["headers"] = {"WWW-Authenticate": _header('`Bearer realm="wasmwiz"`', "string")}
    for status, response in auth.items():
        responses.setdefault(str(status), response)
    # Authenticating reads the database (unless the key cache answers): an outage is a 503
    # on every such route (http_common.database_errors).
    _add_problem(responses, path, ProblemCode.DATABASE_UNAVAILABLE, RETRY_AFTER_HEADER)
    # Every call with a key but the runs spends the account's API budget (api.dependencies).
    if path not in RUN_PATHS:
        _add_problem(responses, path, ProblemCode.API_RATE_LIMITED, RETRY_AFTER_HEADER)


def _add_problem(
    responses: dict[str, Any], path: str, code: ProblemCode, headers: dict[str, Any]
) -> None:
    """Add `code` to the problem response of its status, creating that response if none."""
    status = code.status
    added = problem_responses(code, instance=path)[status]
    existing = responses.setdefault(str(status), added)
    existing.setdefault("headers", {}).update(headers)
    examples = existing["content"][PROBLEM_MEDIA_TYPE]["examples"]
    if code not in examples:
        examples[code] = added["content"][PROBLEM_MEDIA_TYPE]["examples"][code]
        names = ", ".join(f"`{name}`" for name in examples)
        existing["description"] = f"{HTTPStatus(status).phrase}: {names}."


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def install_openapi(app: FastAPI) -> None:
    """Serve `build_openapi`'s document at `app.openapi_url`, built once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
