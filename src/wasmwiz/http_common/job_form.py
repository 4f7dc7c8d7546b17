"""The job form: exactly the execute form, plus `callback_url` (docs/jobs.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request

from wasmwiz.errors import InvalidRequest
from wasmwiz.http_common.execution_form import (
    DEFAULT_FILE_LIMITS,
    execution_form_from_parts,
    execution_form_limits,
    execution_request_from_parts,
    input_entries_async,
    max_execution_body,
    read_limited_form,
    refuse_body_over,
    text_limit,
)
from wasmwiz.http_common.execution_form_model import ExecutionForm, FieldRules
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox.file_input import InputLimits
from wasmwiz.services.executions import ExecutionRequest

MAX_CALLBACK_URL_BYTES = 2048


class JobForm(ExecutionForm):
    """The multipart form of a job: an execution request and where to call back."""

    callback_url: Annotated[
        str | None,
        Field(
            max_length=MAX_CALLBACK_URL_BYTES,
            description="An http(s) URL to send this job's `job.finished` or `job.failed` "
            "event to, signed as webhook deliveries are (docs/webhooks.md). A URL whose "
            "host is a loopback, private, link-local or metadata address is refused.",
            json_schema_extra={"example": ""},
        ),
        FieldRules(ProblemCode.INVALID_CALLBACK_URL, "`callback_url`", MAX_CALLBACK_URL_BYTES),
    ] = None


def job_form_schema() -> dict[str, Any]:
    """The form's JSON Schema, as the OpenAPI document's request body."""
    schema = JobForm.model_json_schema()
    callback = schema["properties"]["callback_url"]
    # A form has no null: the field is optional, left out or empty; its bounds stay.
    (value,) = [branch for branch in callback.pop("anyOf") if branch.get("type") != "null"]
    callback.pop("default", None)
    callback.update(value)
    return schema


@dataclass(frozen=True, slots=True)
class JobSubmission:
    request: ExecutionRequest
    callback_url: str | None


@dataclass(frozen=True, slots=True)
class JobFormReader:
    """The job form's reader under the app's size limits, built once by `create_app`."""

    max_wasm_size: int
    max_input_size: int
    files: InputLimits = DEFAULT_FILE_LIMITS

    @property
    def max_body(self) -> int:
        body = max_execution_body(self.max_wasm_size, self.max_input_size, self.files)
        return body + MAX_CALLBACK_URL_BYTES

    def refuse_declared_oversize(self, request: Request) -> None:
        refuse_body_over(request, self.max_body)

    async def read(self, request: Request) -> JobSubmission:
        limits = {
            **execution_form_limits(self.max_wasm_size, self.max_input_size, self.files),
            "callback_url": text_limit(
                MAX_CALLBACK_URL_BYTES, ProblemCode.INVALID_CALLBACK_URL, "`callback_url`"
            ),
        }
        parts = await read_limited_form(request, limits, self.max_body)
        callback = parts.pop("callback_url", None)
        form = execution_form_from_parts(parts)
        entries = await input_entries_async(parts, self.files)
        return JobSubmission(
            execution_request_from_parts(parts, form, entries),
            _callback_url(callback.data if callback is not None else b""),
        )


def _callback_url(data: bytes | memoryview) -> str | None:
    """The URL as sent (an empty field is none); its target is checked by the webhooks
    service, which also checks it again when it calls."""
    try:
        text = bytes(data).decode().strip()
    except UnicodeDecodeError:
        text = "\0"
    if not text:
        return None
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or any(c.isspace() for c in text):
        raise InvalidRequest(
            "`callback_url` must be an http:// or https:// URL.",
            code=ProblemCode.INVALID_CALLBACK_URL,
        )
    return text
