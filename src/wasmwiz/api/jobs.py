"""/api/v1/jobs: executions accepted now and run from the queue (docs/jobs.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from wasmwiz.api.dependencies import Executor
from wasmwiz.api.openapi import EXECUTE_RESPONSES, RATE_LIMIT_HEADERS, problem_responses
from wasmwiz.api.schemas import ExecutionResponse, OutputEncoding
from wasmwiz.http_common.app_state import app_state
from wasmwiz.http_common.job_form import job_form_schema
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.jobs import JobView

router = APIRouter(tags=["jobs"])

MAX_PAGE_SIZE = 100
JobState = Literal["queued", "running", "finished", "failed", "cancelled", "expired"]
_ENCODING_DESCRIPTION = "`base64` returns the result's stdout and stderr base64-encoded."
EncodingQuery = Annotated[OutputEncoding, Query(description=_ENCODING_DESCRIPTION)]
_JOB_ID = Path(description="The id `POST /api/v1/jobs` answered.")


class JobError(BaseModel):
    code: str = Field(
        description="Why the job failed: the problem code a synchronous run would have been "
        "refused with (`invalid_wasm`, `module_not_found`...), or `job_interrupted`."
    )
    detail: str


class JobResponse(BaseModel):
    id: uuid.UUID
    state: JobState = Field(
        description="`queued`, `running`, then `finished` (with `result`) or `failed` (with "
        "`error`); `cancelled` by DELETE while queued; `expired` once its result was removed."
    )
    created_at: datetime
    started_at: datetime | None = Field(description="When its last attempt began.")
    finished_at: datetime | None
    expires_at: datetime | None = Field(
        description="When the result is removed (the tier's keeping time after it ended)."
    )
    attempts: int = Field(
        description="Attempts begun: more than 1 when a server stopped during a run."
    )
    timeout_seconds: float = Field(description="The run's wall-clock limit: the tier's.")
    callback_url: str | None
    result: ExecutionResponse | None = Field(
        description="A finished job's result: exactly a synchronous run's response."
    )
    error: JobError | None

    @classmethod
    def of(cls, job: JobView, encoding: OutputEncoding = OutputEncoding.UTF8) -> JobResponse:
        result = None
        if job.result is not None and job.execution_id is not None:
            result = ExecutionResponse.from_result(
                job.execution_id, job.result, encoding, cached=job.cached
            )
        error = None
        if job.error_code is not None:
            error = JobError(code=job.error_code, detail=job.error_detail or "")
        return cls(
            id=job.id,
            state=job.state,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            expires_at=job.expires_at,
            attempts=job.attempts,
            timeout_seconds=job.timeout_seconds,
            callback_url=job.callback_url,
            result=result,
            error=error,
        )


def render_job(job: JobView) -> dict[str, Any]:
    """A job's JSON, as GET /api/v1/jobs/{id} answers it: the webhook events' `data`."""
    return JobResponse.of(job).model_dump(mode="json")


class JobPage(BaseModel):
    items: list[JobResponse]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        model.model_dump_json() + "\n",
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


_SUBMIT_RESPONSES: dict[int | str, Any] = {
    202: {
        "description": "Accepted: the job is queued. `Location` is where to poll it.",
        "headers": {
            **RATE_LIMIT_HEADERS,
            "Location": {"description": "/api/v1/jobs/{id}", "schema": {"type": "string"}},
        },
    },
    **{status: value for status, value in EXECUTE_RESPONSES.items() if status != 200},
}
_SUBMIT_RESPONSES.update(
    problem_responses(
        ProblemCode.INVALID_CALLBACK_URL,
        ProblemCode.JOB_QUEUE_FULL,
        ProblemCode.RATE_LIMITED,
        ProblemCode.DAILY_QUOTA_EXCEEDED,
        ProblemCode.TOO_MANY_CONCURRENT,
        instance="/api/v1/jobs",
    )
)
_NOT_FOUND = problem_responses(ProblemCode.JOB_NOT_FOUND, instance="/api/v1/jobs/x")


@router.post(
    "/api/v1/jobs",
    summary="Submit a job: run a module later",
    description="Takes exactly what `POST /api/v1/execute` takes, plus `callback_url`, and "
    "answers 202 at once with the job; poll `GET /api/v1/jobs/{id}` (or receive the "
    "`job.finished` event) for the result, the same as a synchronous run's. Admitted as a run "
    "is: it counts against the rate limit and the daily quota when accepted. A job runs "
    "within its tier's wall-clock limit (Free 5 s, Basic 30 s, Pro 60 s); an account may "
    "have its tier's most jobs waiting (10, 100, 1,000), then 429 `job_queue_full`. A job "
    "accepted is run and recorded once, even if the server is restarted meanwhile.",
    status_code=202,
    response_model=JobResponse,
    responses=_SUBMIT_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": job_form_schema()}},
        }
    },
)
async def submit_job(request: Request, principal: Executor) -> Response:
    state = app_state(request)
    state.job_form.refuse_declared_oversize(request)

    async def read() -> tuple[Any, str | None]:
        submission = await state.job_form.read(request)
        return submission.request, submission.callback_url

    submitted = await state.jobs.submit(principal, read)
    return _json(
        JobResponse.of(submitted.job),
        202,
        {**submitted.admission.headers, "Location": f"/api/v1/jobs/{submitted.job.id}"},
    )


@router.get(
    "/api/v1/jobs",
    summary="List your jobs",
    description="Newest first, a page at a time (`cursor` from the previous page), of one "
    "`state` or all.",
    response_model=JobPage,
)
async def list_jobs(
    request: Request,
    principal: Executor,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    encoding: EncodingQuery = OutputEncoding.UTF8,
) -> Response:
    page = await app_state(request).jobs.list(principal, state=state, limit=limit, cursor=cursor)
    return _json(
        JobPage(
            items=[JobResponse.of(job, encoding) for job in page.jobs], next_cursor=page.next_cursor
        )
    )


@router.get(
    "/api/v1/jobs/{job_id}",
    summary="Show a job",
    description="Its state, and its result once `finished` (or `error` once `failed`).",
    response_model=JobResponse,
    responses=_NOT_FOUND,
)
async def get_job(
    request: Request,
    principal: Executor,
    job_id: Annotated[uuid.UUID, _JOB_ID],
    encoding: EncodingQuery = OutputEncoding.UTF8,
) -> Response:
    job = await app_state(request).jobs.get(principal, job_id)
    return _json(JobResponse.of(job, encoding))


@router.delete(
    "/api/v1/jobs/{job_id}",
    summary="Cancel a queued job",
    description="A queued job becomes `cancelled` and never runs (its admission stays "
    "spent). A job already running or ended: 409 `job_not_cancellable`.",
    response_model=JobResponse,
    responses={
        **_NOT_FOUND,
        **problem_responses(ProblemCode.JOB_NOT_CANCELLABLE, instance="/api/v1/jobs/x"),
    },
)
async def cancel_job(
    request: Request, principal: Executor, job_id: Annotated[uuid.UUID, _JOB_ID]
) -> Response:
    job = await app_state(request).jobs.cancel(principal, job_id)
    return _json(JobResponse.of(job))
