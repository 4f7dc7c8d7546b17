"""POST /api/v1/execute: run a module with stdin, args and env."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError

from wasmwiz.api.dependencies import get_principal
from wasmwiz.api.openapi import EXECUTE_RESPONSES, SECURITY_SCHEME
from wasmwiz.api.schemas import ExecutionResponse, OutputEncoding
from wasmwiz.http_common.app_state import app_state

router = APIRouter(tags=["executions"])

_ENCODING_DESCRIPTION = "`base64` returns stdout and stderr base64-encoded, byte for byte."

# The route takes only the Request: the busiest path skips FastAPI's per-request
# dependency solving and response-model round trip (about a tenth of a hello-world
# request, bench/request_path.py). What FastAPI would have derived from a richer
# signature is declared here instead, so the OpenAPI document stays the same.
_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "encoding",
            "in": "query",
            "required": False,
            "schema": {
                "$ref": "#/components/schemas/OutputEncoding",
                "description": _ENCODING_DESCRIPTION,
                "default": OutputEncoding.UTF8.value,
            },
            "description": _ENCODING_DESCRIPTION,
        }
    ],
    "security": [{SECURITY_SCHEME: []}],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["wasm"],
                    "properties": {
                        "wasm": {
                            "type": "string",
                            "format": "binary",
                            "description": "The module: a .wasm binary or .wat text "
                            "(judged by content). At most MAX_WASM_SIZE bytes (10 MiB).",
                        },
                        "input": {
                            "type": "string",
                            "format": "binary",
                            "description": "stdin, as a file or a text field. "
                            "At most MAX_INPUT_SIZE bytes (1 MiB).",
                        },
                        "args": {
                            "type": "string",
                            "description": 'A JSON array of strings, e.g. ["-n", "3"]. '
                            "argv[0] is the module's file name.",
                            "example": "[]",
                        },
                        "env": {
                            "type": "string",
                            "description": 'A JSON object of strings, e.g. {"LANG": "C"}. '
                            "The guest sees exactly these variables and nothing of the host's.",
                            "example": "{}",
                        },
                        "deterministic": {
                            "type": "boolean",
                            "description": "true: virtual clocks (starting 2024-01-01T00:00:00Z, "
                            "advanced only by sleeping) and random_get seeded by `seed`, so "
                            "the same request prints the same bytes.",
                            "example": False,
                        },
                        "seed": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "random_get's seed when deterministic (default 0).",
                            "example": 0,
                        },
                        "max_fuel": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "A fuel budget; the run ends `fuel_exhausted` when "
                            "it is used up. The tier's own cap, if any, still applies. "
                            "Without it only that cap and the time limit bound a run; the "
                            "example (10^12) is more than any run can use within the time "
                            "limit.",
                            "example": 1_000_000_000_000,
                        },
                    },
                }
            }
        },
    },
}


_DESCRIPTION = (
    "Runs a WASI (preview 1) command module with the given stdin, args and env inside the "
    "service's limits and returns what it printed. A 200 means the program ran; `status` says "
    "how it ended (a trap, a timeout or a limit is an outcome, not an error). Refusals are "
    "problem details with a stable `code`.\n\n"
    "Every response that reached the rate limiter carries the `X-RateLimit-*` headers; "
    "429 and 503 refusals carry `Retry-After`. A key's tier sets its per-minute rate, daily "
    "quota and concurrent runs (Free 10/500/2, Basic 100/10,000/10, Pro 500/50,000/50)."
)


# Decorators register bottom-up: /api/v1/execute first, so the documents (Swagger UI,
# ReDoc, openapi.json) list it before its alias.
@router.post(
    "/execute",
    summary="Run a WebAssembly module (alias of /api/v1/execute)",
    description="The same as `POST /api/v1/execute`, kept as a short path.\n\n" + _DESCRIPTION,
    response_model=ExecutionResponse,
    responses=EXECUTE_RESPONSES,
    openapi_extra=_OPENAPI,
)
@router.post(
    "/api/v1/execute",
    summary="Run a WebAssembly module",
    description=_DESCRIPTION,
    response_model=ExecutionResponse,
    responses=EXECUTE_RESPONSES,
    openapi_extra=_OPENAPI,
)
async def execute(request: Request) -> Response:
    principal = await get_principal(request)
    state = app_state(request)
    encoding = _output_encoding(request)
    state.execution_form.refuse_declared_oversize(request)
    # Admission (rate, quota, a concurrency slot) before the first byte of the body is
    # read: a refused caller costs a head, not a 10 MiB buffer.
    report = await state.executions.admit_then_execute(
        principal, lambda: state.execution_form.read(request)
    )
    answer = ExecutionResponse.from_result(report.execution_id, report.result, encoding)
    # A trailing newline, as every JSON answer has, so a shell prompt starts on its own line.
    return Response(
        answer.model_dump_json() + "\n",
        media_type="application/json",
        headers=report.admission.headers,
    )


def _output_encoding(request: Request) -> OutputEncoding:
    raw = request.query_params.get("encoding")
    if raw is None:
        return OutputEncoding.UTF8
    try:
        return OutputEncoding(raw)
    except ValueError:
        # The same refusal FastAPI gives a bad query parameter (422 invalid_request).
        raise RequestValidationError(
            [
                {
                    "type": "enum",
                    "loc": ("query", "encoding"),
                    "msg": "Input should be "
                    + " or ".join(f"'{choice.value}'" for choice in OutputEncoding),
                    "input": raw,
                }
            ]
        ) from None
