"""POST /api/v1/execute: run a module with stdin, args and env."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from wasmwiz.api.dependencies import Runner
from wasmwiz.api.openapi import BATCH_RESPONSES, EXECUTE_RESPONSES
from wasmwiz.api.schemas import BatchResponse, ExecutionResponse, OutputEncoding
from wasmwiz.config import Settings
from wasmwiz.http_common.app_state import app_state
from wasmwiz.http_common.batch_form import batch_form_schema
from wasmwiz.http_common.execution_form_model import execution_form_schema

router = APIRouter(tags=["executions"])

_ENCODING_DESCRIPTION = "`base64` returns stdout and stderr base64-encoded, byte for byte."
EncodingQuery = Annotated[OutputEncoding, Query(description=_ENCODING_DESCRIPTION)]

# The form is read by the route itself, streaming, after admission (a FastAPI body
# parameter would read it all first): the request body is documented from the model the
# reader fills.
_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": execution_form_schema()}},
    }
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
    openapi_extra=_FORM_BODY,
)
@router.post(
    "/api/v1/execute",
    summary="Run a WebAssembly module",
    description=_DESCRIPTION,
    response_model=ExecutionResponse,
    responses=EXECUTE_RESPONSES,
    openapi_extra=_FORM_BODY,
)
async def execute(
    request: Request, principal: Runner, encoding: EncodingQuery = OutputEncoding.UTF8
) -> Response:
    state = app_state(request)
    state.execution_form.refuse_declared_oversize(request)
    # Admission (rate, quota, a concurrency slot) before the first byte of the body is
    # read: a refused caller costs a head, not a 10 MiB buffer.
    report = await state.executions.admit_then_execute(
        principal, lambda: state.execution_form.read(request)
    )
    answer = ExecutionResponse.from_result(
        report.execution_id, report.result, encoding, cached=report.cached
    )
    # A trailing newline, as every JSON answer has, so a shell prompt starts on its own line.
    return Response(
        answer.model_dump_json() + "\n",
        media_type="application/json",
        headers=report.admission.headers,
    )


_DEFAULT_MAX_CASES: int = Settings.model_fields["max_batch_cases"].default
_BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": batch_form_schema(execution_form_schema(), _DEFAULT_MAX_CASES)
            }
        },
    }
}


@router.post(
    "/api/v1/execute/batch",
    summary="Run one module against many inputs",
    description="Runs the module (uploaded in `wasm`, or stored: `module`) once for each of "
    "up to MAX_BATCH_CASES (100) cases, each with its own stdin, args and env, and answers "
    "one result per case, in order, each exactly the response of a single run. The module "
    "is compiled once; the cases run side by side up to the account's free concurrent runs, "
    "each with a run's limits, all within BATCH_TIMEOUT (60 s): a case not started by then "
    "ends `timeout` without running.\n\n"
    "A batch of N cases counts N runs against the rate and the daily quota, admitted all or "
    "nothing: a 429 carries `fits`, how many runs the account could start now. Every case is "
    "checked before anything runs; a bad one is 400 `invalid_cases` with its index in `case`.",
    response_model=BatchResponse,
    responses=BATCH_RESPONSES,
    openapi_extra=_BATCH_BODY,
)
async def execute_batch(
    request: Request, principal: Runner, encoding: EncodingQuery = OutputEncoding.UTF8
) -> Response:
    state = app_state(request)
    state.batch_form.refuse_declared_oversize(request)
    report = await state.executions.admit_then_run_batch(
        principal, lambda: state.batch_form.read(request)
    )
    answer = BatchResponse(
        batch_id=report.batch_id,
        results=[
            ExecutionResponse.from_result(execution_id, result, encoding)
            for execution_id, result in report.results
        ],
    )
    return Response(
        answer.model_dump_json() + "\n",
        media_type="application/json",
        headers=report.admission.headers,
    )
