"""What the sync and async clients share: building the request, reading the reply, retrying."""

from __future__ import annotations

import base64
import json
import os
import random
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from wasmwiz_client._files import ArchiveSource, InputFiles, input_file_parts
from wasmwiz_client._version import __version__
from wasmwiz_client.errors import (
    ProblemError,
    UnexpectedResponse,
    WasmWizClientError,
    problem_class,
)
from wasmwiz_client.models import (
    BatchCase,
    BatchResult,
    ExecutionResult,
    Job,
    JobPage,
    JobState,
    ModulePage,
    StoredModule,
)

EXECUTE_PATH = "/api/v1/execute"
BATCH_PATH = "/api/v1/execute/batch"
MODULES_PATH = "/api/v1/modules"
JOBS_PATH = "/api/v1/jobs"
MAX_PAGE_SIZE = 100  # the most modules the service lists on one page
DEFAULT_TIMEOUT = 60.0
# How often `JobHandle.wait` looks: first after POLL_INTERVAL, each wait then 1.5 times the
# last up to MAX_POLL_INTERVAL, so a short job is seen done soon and a long one costs a
# request every few seconds, not a stream of them.
POLL_INTERVAL = 0.25
MAX_POLL_INTERVAL = 5.0
POLL_BACKOFF = 1.5
URL_ENV = "WASMWIZ_URL"
API_KEY_ENV = "WASMWIZ_API_KEY"

WasmSource = bytes | str | os.PathLike[str]
InputSource = bytes | str | None
# How the service encodes stdout and stderr in JSON: base64 keeps every byte; utf-8
# replaces invalid bytes, and is smaller. The results hold the decoded bytes either way.
Encoding = Literal["base64", "utf-8"]
T = TypeVar("T")
# A part of a multipart form: (file name, content, content type), the name None for a
# plain field.
PartContent = tuple[str | None, bytes, str | None]
Part = tuple[str, PartContent]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before sending a refused request again.

    Only refusals that say "try again later" are retried. A `Retry-After` on 429 is exact
    (retrying then succeeds unless the same key spends the budget meanwhile), so it is
    waited as given; a 503 gets at least exponential backoff. A wait longer than
    `max_wait` (a spent daily quota waits until midnight) is not slept: the error is raised.
    Connection failures are never retried: the run may already have happened.
    """

    max_retries: int = 3
    max_wait: float = 60.0
    backoff: float = 1.0
    jitter: float = 0.1
    codes: frozenset[str] = field(
        default=frozenset(
            {
                "rate_limited",
                "too_many_concurrent",
                "api_rate_limited",
                "server_busy",
                "rate_limiter_unavailable",
            }
        )
    )

    def delay(
        self, error: WasmWizClientError, attempt: int, rand: Callable[[], float] = random.random
    ) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up."""
        if (
            not isinstance(error, ProblemError)
            or attempt >= self.max_retries
            or error.code not in self.codes
        ):
            return None
        exponential = self.backoff * 2.0**attempt
        if error.retry_after is None:
            wait = exponential
        elif error.status == 429:
            wait = error.retry_after
        else:
            wait = max(error.retry_after, exponential)
        if wait > self.max_wait:
            return None
        # Jitter only lengthens the wait: Retry-After is the earliest moment that works, and
        # clients sharing a key should not all come back at the same instant.
        return wait * (1 + self.jitter * rand())


def resolve_retry(retry: RetryPolicy | bool) -> RetryPolicy | None:
    if retry is True:
        return RetryPolicy()
    return retry or None


def client_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"User-Agent": f"wasmwiz-client/{__version__}", "Accept": "application/json"}
    if api_key:
        check_api_key(api_key)
        headers["Authorization"] = f"Bearer {api_key}"
    headers.update(extra or {})
    return headers


def check_api_key(api_key: str) -> None:
    """Refuse a key that cannot go in a header, saying why without ever showing it."""
    for position, char in enumerate(api_key, start=1):
        if not char.isascii() or not char.isprintable() or char.isspace():
            what = "a line break" if char in "\r\n" else f"the character {char!a}"
            raise WasmWizClientError(
                f"The API key has {what} at position {position} of {len(api_key)}: "
                "copy it again without it (the key is not shown here)."
            )


def normalize_base_url(url: str) -> str:
    """The service's root: a URL copied with the API's prefix (`…/api/v1`) works too."""
    url = url.strip().rstrip("/")
    return url.removesuffix("/api/v1").rstrip("/")


def settings_from_env(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    url = base_url or os.environ.get(URL_ENV)
    if not url:
        raise WasmWizClientError(
            f"No service URL: set {URL_ENV}, e.g. export {URL_ENV}=http://127.0.0.1:8080"
        )
    return url, api_key or os.environ.get(API_KEY_ENV)


def execute_request(
    wasm: WasmSource | None,
    *,
    module: str | None = None,
    input: InputSource,
    args: Sequence[str] | None,
    env: Mapping[str, str] | None,
    filename: str | None,
    deterministic: bool | None = None,
    seed: int | None = None,
    max_fuel: int | None = None,
    cache: bool | None = None,
    files: InputFiles | None = None,
    archive: ArchiveSource | None = None,
    collect: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for httpx: the multipart form and `?encoding=base64`.

    Base64 output keeps stdout and stderr byte-exact, whatever the program wrote. Every
    argument is checked, and every local file read, before anything is sent.
    """
    parts, data = module_source(wasm, module, filename)
    if input is not None:
        stdin = input.encode("utf-8") if isinstance(input, str) else input
        parts.append(("input", ("input", stdin, "application/octet-stream")))
    if args is not None:
        data["args"] = json.dumps(_string_list(args))
    if env is not None:
        data["env"] = json.dumps(dict(env))
    data.update(run_options(deterministic, seed, max_fuel))
    if cache is not None:
        data["cache"] = "true" if cache else "false"
    if collect is not None:
        data["collect"] = json.dumps(_string_list(collect, "collect"))
    parts += input_file_parts(files, archive)
    return {"files": parts, "data": data, "params": {"encoding": "base64"}}


def submit_request(callback_url: str | None, **execute: Any) -> dict[str, Any]:
    """Keyword arguments for httpx: a job's form is the execute form and its `callback_url`."""
    request = execute_request(**execute)
    if callback_url is not None:
        if not isinstance(callback_url, str) or not callback_url:
            raise ValueError(f"callback_url is a URL, not {callback_url!r}")
        request["data"]["callback_url"] = callback_url
    return request


def batch_request(
    cases: Iterable[BatchCase | Mapping[str, Any]],
    *,
    wasm: WasmSource | None,
    module: str | None,
    defaults: BatchCase | Mapping[str, Any] | None,
    filename: str | None,
    deterministic: bool | None,
    seed: int | None,
    max_fuel: int | None,
    encoding: Encoding,
) -> dict[str, Any]:
    """Keyword arguments for httpx: a batch's form, its cases as one JSON file part.

    A file part, not a text field: a hundred cases with their stdin can be megabytes.
    """
    if encoding not in ("base64", "utf-8"):
        raise ValueError(f"encoding is 'base64' or 'utf-8', not {encoding!r}")
    files, data = module_source(wasm, module, filename)
    wire_cases = [case_object(case) for case in cases]
    body = json.dumps(wire_cases, separators=(",", ":")).encode("utf-8")
    files.append(("cases", ("cases.json", body, "application/json")))
    if defaults is not None:
        data["defaults"] = json.dumps(case_object(defaults), separators=(",", ":"))
    data.update(run_options(deterministic, seed, max_fuel))
    return {"files": files, "data": data, "params": {"encoding": encoding}}


def module_source(
    wasm: WasmSource | None, module: str | None, filename: str | None
) -> tuple[list[Part], dict[str, str]]:
    """The form's module: the `wasm` file part, or the `module` reference; exactly one.

    The reference goes as a part of the form too: a form with no file httpx would send
    urlencoded, and the service takes multipart only.
    """
    if module is None:
        if wasm is None:
            raise ValueError("no module: pass wasm (bytes or a path) or module (an id or name)")
        return [("wasm", wasm_part(wasm, filename))], {}
    if wasm is not None:
        raise ValueError("pass wasm or module, not both")
    if not isinstance(module, str) or not module:
        raise ValueError(f"module is a stored module's id (sha256:…) or name, not {module!r}")
    return [("module", (None, module.encode("utf-8"), None))], {}


def wasm_part(wasm: WasmSource, filename: str | None) -> PartContent:
    """A module's file part; reading a path is blocking I/O (the async client threads it)."""
    if isinstance(wasm, bytes):
        return filename or "main.wasm", wasm, "application/octet-stream"
    path = Path(wasm)
    return filename or path.name, path.read_bytes(), "application/octet-stream"


def run_options(
    deterministic: bool | None, seed: int | None, max_fuel: int | None
) -> dict[str, str]:
    data: dict[str, str] = {}
    if deterministic is not None:
        data["deterministic"] = "true" if deterministic else "false"
    if seed is not None:
        data["seed"] = str(seed)
    if max_fuel is not None:
        data["max_fuel"] = str(max_fuel)
    return data


def case_object(case: BatchCase | Mapping[str, Any]) -> dict[str, Any]:
    """A case (or the defaults) as the API takes it.

    A mapping is sent as given, but for bytes under `stdin`, which go as `stdin_base64`.
    """
    if isinstance(case, BatchCase):
        fields: dict[str, Any] = {"stdin": case.stdin, "args": case.args, "env": case.env}
        wire = {key: value for key, value in fields.items() if value is not None}
    elif isinstance(case, Mapping):
        wire = dict(case)
    else:
        raise TypeError(f"a case is a BatchCase or a mapping, not {type(case).__name__}")
    stdin = wire.get("stdin")
    if isinstance(stdin, bytes):
        del wire["stdin"]
        wire["stdin_base64"] = base64.b64encode(stdin).decode("ascii")
    if "args" in wire:
        wire["args"] = _string_list(wire["args"])
    if isinstance(wire.get("env"), Mapping):
        wire["env"] = dict(wire["env"])
    return wire


def _string_list(args: Sequence[str], what: str = "args") -> list[str]:
    if isinstance(args, str):
        raise TypeError(f"{what} must be a sequence of strings, not a string")
    return list(args)


def upload_request(wasm: WasmSource, name: str | None, filename: str | None) -> dict[str, Any]:
    data = {"name": name} if name is not None else {}
    return {"files": [("wasm", wasm_part(wasm, filename))], "data": data}


def page_params(limit: int | None, cursor: str | None) -> dict[str, str]:
    params = {"limit": str(limit)} if limit is not None else {}
    if cursor is not None:
        params["cursor"] = cursor
    return params


def job_params(
    state: JobState | str | None = None, limit: int | None = None, cursor: str | None = None
) -> dict[str, str]:
    """A job's query: base64 output, as `execute` asks, so a result's bytes are exact."""
    params = {"encoding": "base64", **page_params(limit, cursor)}
    if state is not None:
        params["state"] = str(state)
    return params


def job_path(job_id: uuid.UUID | str) -> str:
    """The route of one job; anything but a UUID is a ValueError before anything is sent."""
    try:
        return f"{JOBS_PATH}/{uuid.UUID(str(job_id))}"
    except ValueError:
        raise ValueError(f"not a job id (a UUID): {job_id!r}") from None


def poll_delays(first: float = POLL_INTERVAL, most: float = MAX_POLL_INTERVAL) -> Iterator[float]:
    """The waits between a job's polls: `first`, then 1.5 times longer each, up to `most`.

    Checked when called, not at the first wait: a bad interval is refused before a poll.
    """
    if not 0 < first <= most:
        raise ValueError(f"need 0 < poll_interval <= max_poll_interval, not {first}, {most}")

    def delays() -> Iterator[float]:
        delay = first
        while True:
            yield delay
            delay = min(delay * POLL_BACKOFF, most)

    return delays()


def module_path(reference: str) -> str:
    """The route of one stored module, the reference quoted as one path segment."""
    return f"{MODULES_PATH}/{_segment(reference, 'module reference')}"


def name_path(name: str) -> str:
    return f"{MODULES_PATH}/names/{_segment(name, 'module name')}"


def _segment(value: str, what: str) -> str:
    # No id or name holds a `/`, and the service decodes `%2F` before it routes: refused
    # here, `names/x` would reach the names route. `.` and `..` would be taken as steps of
    # the path. What is left is quoted, so `?` or `#` stay in the segment.
    if not isinstance(value, str) or value in ("", ".", "..") or "/" in value:
        raise ValueError(f"not a {what}: {value!r}")
    return quote(value, safe=":")


def read_execution(response: httpx.Response) -> ExecutionResult:
    return read_answer(response, ExecutionResult.from_response, "an execution result")


def read_batch(response: httpx.Response) -> BatchResult:
    return read_answer(response, BatchResult.from_response, "a batch's results")


def read_module(response: httpx.Response) -> StoredModule:
    return read_answer(response, lambda body, _: StoredModule.from_response(body), "a module")


def read_module_page(response: httpx.Response) -> ModulePage:
    return read_answer(response, lambda body, _: ModulePage.from_response(body), "a page")


def read_job(response: httpx.Response) -> Job:
    return read_answer(response, lambda body, _: Job.from_response(body), "a job")


def read_job_page(response: httpx.Response) -> JobPage:
    return read_answer(response, lambda body, _: JobPage.from_response(body), "a page of jobs")


def read_no_content(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_for(response)


def read_answer(response: httpx.Response, parse: Callable[[Any, httpx.Headers], T], what: str) -> T:
    """The parsed body of a 2xx answer; a refusal raised as its ProblemError subclass."""
    if not response.is_success:
        raise error_for(response)
    try:
        return parse(response.json(), response.headers)
    except (ValueError, KeyError, TypeError) as exc:
        raise UnexpectedResponse(
            f"A {response.status_code} response that is not {what}: {exc!r}", response
        ) from None


def read_health(response: httpx.Response) -> dict[str, Any]:
    """The health checks' body; a 503 (a check failing) is a value, not an error."""
    if response.status_code not in (200, 503) or "json" not in response.headers.get(
        "content-type", ""
    ):
        raise error_for(response)
    body: dict[str, Any] = response.json()
    return body


def error_for(response: httpx.Response) -> WasmWizClientError:
    """The exception for a refusal: a ProblemError subclass when the body is problem details."""
    content_type = response.headers.get("content-type", "")
    if "json" in content_type:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            return problem_class(response.status_code, body["code"])(body, response)
    return UnexpectedResponse(
        f"HTTP {response.status_code} from {response.request.url} "
        f"({content_type or 'no content type'}), not a WasmWiz response",
        response,
    )
