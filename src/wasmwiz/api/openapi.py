"""The OpenAPI document: problem-details responses, the Bearer scheme and rate-limit headers.

Routes declare what is particular to them (`problem_responses(...)`, `EXECUTE_RESPONSES`);
`build_openapi` adds what follows from the app's structure, so it cannot drift from it:
the Bearer requirement and 401/403 on every route that authenticates, and problem details
in place of FastAPI's default validation-error body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from wasmwiz.http_common.problems import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SECURITY_SCHEME = "apiKey"

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

# Every problem code a route can answer with: its status and a typical `detail`.
PROBLEMS: dict[str, tuple[int, str]] = {
    "missing_wasm": (
        400,
        "Send the module in the `wasm` field (a .wasm binary or .wat text file).",
    ),
    "invalid_args": (400, "`args` must be a JSON array of strings."),
    "invalid_env": (400, "`env` must be a JSON object whose values are strings."),
    "invalid_deterministic": (400, "`deterministic` must be true or false."),
    "invalid_seed": (400, "`seed` must be an integer from 0 to 18446744073709551615."),
    "invalid_max_fuel": (400, "`max_fuel` must be an integer from 1 to 18446744073709551615."),
    "unknown_field": (
        400,
        "Unknown form field 'stdin'; the fields are: args, deterministic, env, input, "
        "max_fuel, seed, wasm.",
    ),
    "invalid_form": (
        400,
        "The multipart body could not be parsed: Expected boundary character 45, got 103 at "
        "index 2",
    ),
    "unsupported_media_type": (400, "Send the request as multipart/form-data."),
    "invalid_name": (400, "A key name needs 1 to 100 characters."),
    "invalid_expiry": (400, "The expiry must be in the future."),
    "unauthorized": (401, "Send your API key as `Authorization: Bearer <key>`."),
    "forbidden": (403, "This account is deactivated."),
    "not_found": (404, "No such API key."),
    "request_timeout": (408, "The request body was not received in time."),
    "wasm_too_large": (413, "The module is larger than the limit of 10485760 bytes."),
    "input_too_large": (413, "The input is larger than the limit of 1048576 bytes."),
    "request_too_large": (
        413,
        "The request body (20000000 bytes) is larger than the limit of 11730944 bytes.",
    ),
    "invalid_request": (422, "The request is not valid: query.encoding"),
    "empty_wasm": (422, "the module is empty"),
    "invalid_wasm": (422, "neither a WebAssembly binary nor UTF-8 WebAssembly text"),
    "truncated_wasm": (422, "the binary ends unexpectedly"),
    "invalid_wat": (422, "expected `)`"),
    "component_not_supported": (
        422,
        "component-model binaries are not supported; submit a WASI preview 1 core module",
    ),
    "unsupported_import": (422, "import env.foo is not a WASI preview 1 function"),
    "missing_start": (422, "the module exports no `_start` function"),
    "unsupported_feature": (422, "the threads proposal is not supported"),
    "declared_memory_too_large": (
        422,
        "the module declares at least 4096 pages of memory; the limit is 2048",
    ),
    "declared_table_too_large": (422, "a table declares at least 1000000 elements"),
    "too_many_functions": (422, "the module has more functions than the limit"),
    "too_many_locals": (422, "a function declares more locals than the limit"),
    "function_too_large": (422, "a function body is larger than the limit"),
    "too_many_data_segments": (422, "the module has more data segments than the limit"),
    "compile_timeout": (422, "compiling the module took longer than the limit"),
    "compile_memory_limit": (422, "compiling the module needed more memory than the limit"),
    "rate_limited": (429, "More than 10 executions a minute; retry in 6 s."),
    "daily_quota_exceeded": (
        429,
        "The daily quota of 500 executions is used up; it resets at 00:00 UTC.",
    ),
    "too_many_concurrent": (
        429,
        "This key already has 2 executions in flight; wait for one to finish.",
    ),
    "server_busy": (503, "Every execution slot is busy; try again shortly."),
    "rate_limiter_unavailable": (
        503,
        "Rate limiting is temporarily unavailable; try again shortly.",
    ),
    "shutting_down": (503, "The server is shutting down."),
    "internal_error": (
        500,
        "Something went wrong on our side; the request id identifies it in our logs.",
    ),
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
}
RETRY_AFTER_HEADER: dict[str, Any] = {
    "Retry-After": _header("Whole seconds (at least 1) to wait before retrying.")
}
REQUEST_ID_HEADER: dict[str, Any] = {
    "X-Request-ID": _header("Identifies the request in our logs.", "string")
}


def problem_example(
    code: str, instance: str = "/api/v1/execute", detail: str | None = None
) -> dict[str, Any]:
    status, typical = PROBLEMS[code]
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or typical,
        "code": code,
        "instance": instance,
        "request_id": "5f0c1e0b8c4d4e51a3d2f0f3b1c2d3e4",
    }


def problem_responses(
    *codes: str, instance: str = "/api/v1/execute", details: dict[str, str] | None = None
) -> dict[int | str, Any]:
    """The `responses` entries for these problem codes, grouped by status, one example each.

    `details` overrides the typical `detail` of a code where this route words it otherwise.
    """
    details = details or {}
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(PROBLEMS[code][0], []).append(code)
    responses: dict[int | str, Any] = {}
    for status, status_codes in sorted(by_status.items()):
        names = ", ".join(f"`{code}`" for code in status_codes)
        responses[status] = {
            "description": f"{HTTPStatus(status).phrase}: {names}.",
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": PROBLEM_REF,
                    "examples": {
                        code: {
                            "summary": code,
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
        "fuel_consumed": 45,
        "memory_peak_bytes": 65536,
        "output_truncated": False,
        "stderr_truncated": False,
        "encoding": "utf-8",
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
}

EXECUTE_RESPONSES: dict[int | str, Any] = {
    200: {
        "description": "The program ran. `status` says how it ended: a trap, a timeout or a "
        "limit is an outcome of the run, not an error.",
        "headers": {**RATE_LIMIT_HEADERS, **REQUEST_ID_HEADER},
    },
    **problem_responses(
        "missing_wasm",
        "invalid_args",
        "invalid_env",
        "unknown_field",
        "invalid_form",
        "unsupported_media_type",
        "request_timeout",
        "wasm_too_large",
        "input_too_large",
        "request_too_large",
        "invalid_request",
        "empty_wasm",
        "invalid_wasm",
        "truncated_wasm",
        "invalid_wat",
        "component_not_supported",
        "unsupported_import",
        "missing_start",
        "unsupported_feature",
        "declared_memory_too_large",
        "declared_table_too_large",
        "too_many_functions",
        "too_many_locals",
        "function_too_large",
        "too_many_data_segments",
        "compile_timeout",
        "compile_memory_limit",
        "rate_limited",
        "daily_quota_exceeded",
        "too_many_concurrent",
        "server_busy",
        "rate_limiter_unavailable",
        "shutting_down",
    ),
}
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
}
# Examples of the response schemas, by component name (JSON Schema `examples`).
SCHEMA_EXAMPLES: dict[str, list[Any]] = {
    "ApiKeyOut": [_KEY],
    "ApiKeyPage": [{"items": [_KEY], "page": 1, "per_page": 20, "next_page": None}],
    "ApiKeyCreate": [{"name": "ci", "expires_at": "2027-01-01T00:00:00Z"}],
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
            "tier": "free",
            "recent": [_RECENT_RUN],
        }
    ],
    "ExecutionResponse": [_EXECUTION_EXAMPLES["success"]["value"]],
    "Problem": [problem_example("unauthorized")],
}


def _uses(dependant: Dependant, dependency: Callable[..., Any]) -> bool:
    return any(sub.call is dependency or _uses(sub, dependency) for sub in dependant.dependencies)


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Every APIRoute, also inside included routers (FastAPI 0.13x+ keeps those nested)."""
    iterate = getattr(routing, "iter_route_contexts", None)
    if iterate is None:
        yield from (route for route in app.routes if isinstance(route, APIRoute))
        return
    for context in iterate(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def _authenticated_operations(
    spec: dict[str, Any], app: FastAPI, dependency: Callable[..., Any]
) -> Iterator[tuple[str, str]]:
    """Operations that depend on `dependency`, or declare their security themselves
    (a route that authenticates in its body, like execute's)."""
    for route in _api_routes(app):
        if route.include_in_schema and _uses(route.dependant, dependency):
            for method in route.methods or ():
                yield route.path_format, method.lower()
    for path, path_item in spec.get("paths", {}).items():
        for method, operation in path_item.items():
            if "security" in operation:
                yield path, method


def build_openapi(app: FastAPI, authenticate: Callable[..., Any]) -> dict[str, Any]:
    """The app's OpenAPI 3.1 document, completed from its routes and dependencies."""
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
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    # Our validation errors are problem details (`invalid_request`), not FastAPI's default.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ww_…",
            "description": "An API key: `Authorization: Bearer ww_…`. Create one in the web "
            "interface, with `POST /api/v1/keys`, or `wasmwiz keys create EMAIL`.",
        }
    }
    for path, path_item in spec.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            if "422" in responses and _is_fastapi_validation(responses["422"]):
                responses["422"] = problem_responses("invalid_request", instance=path)[422]
            responses.setdefault("500", problem_responses("internal_error", instance=path)[500])
            # Added here, not in the route: FastAPI drops the nulls from examples it renders.
            for response in responses.values():
                media = response.get("content", {}).get("application/json", {})
                if media.get("schema", {}).get("$ref", "").endswith("/ExecutionResponse"):
                    media["examples"] = _EXECUTION_EXAMPLES
    for name, examples in SCHEMA_EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = examples
    for path, method in _authenticated_operations(spec, app, authenticate):
        operation = spec["paths"][path][method]
        operation["security"] = [{SECURITY_SCHEME: []}]
        responses = operation["responses"]
        auth = problem_responses("unauthorized", "forbidden", instance=path)
        auth[401]["headers"] = {"WWW-Authenticate": _header('`Bearer realm="wasmwiz"`', "string")}
        for status, response in auth.items():
            responses.setdefault(str(status), response)
    return spec


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def install_openapi(app: FastAPI, authenticate: Callable[..., Any]) -> None:
    """Serve `build_openapi`'s document at `app.openapi_url`, built once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, authenticate)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
