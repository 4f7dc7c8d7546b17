"""The client's exception tree: one class per way a request can be refused.

    WasmWizClientError                    anything the client raises
    ├── ConnectionFailed                  the service could not be reached (wraps httpx's error)
    ├── UnexpectedResponse                a response that is neither a result nor a problem
    ├── UnsafePathError                   a collected file's path that would leave its directory
    ├── JobWaitTimeout                    `wait` gave up before the job reached a final state
    └── ProblemError                      a problem-details refusal: .status, .code, .request_id
        ├── InvalidRequestError           400, and 422 `invalid_request`
        │   ├── InvalidCasesError         `invalid_cases`: .case, the index of the bad case
        │   ├── InvalidFilesError         `invalid_file_path`, `invalid_archive`, … (files, collect)
        │   ├── InvalidCallbackURLError   `invalid_callback_url`
        │   └── WebhookURLRefusedError    `webhook_url_refused`
        ├── AuthenticationError           401 `unauthorized`
        ├── PermissionDeniedError         403 `forbidden`
        │   └── StorageQuotaExceededError `storage_quota_exceeded`
        ├── NotFoundError                 404 `not_found`
        │   ├── StoredModuleNotFoundError `module_not_found`
        │   ├── JobNotFoundError          `job_not_found`
        │   └── WebhookNotFoundError      `webhook_not_found`
        ├── ConflictError                 409 `conflict`, `too_many_webhooks`, …
        │   └── JobNotCancellableError    `job_not_cancellable`
        ├── PayloadTooLargeError          413 `wasm_too_large`, `input_too_large`, …
        │   └── FilesTooLargeError        `files_too_large`
        ├── ModuleRejectedError           422 `invalid_wasm`, `unsupported_import`, …
        ├── LimitExceededError            429: .fits, how many of a batch's cases would run
        │   ├── RateLimitedError          `rate_limited`
        │   ├── DailyQuotaExceededError   `daily_quota_exceeded`
        │   ├── TooManyConcurrentError    `too_many_concurrent`
        │   └── JobQueueFullError         `job_queue_full`
        └── ServiceUnavailableError       503
            ├── ServerBusyError           `server_busy`
            ├── RateLimiterUnavailableError `rate_limiter_unavailable`
            └── DatabaseUnavailableError  `database_unavailable`

A program that ran and failed (trap, timeout, memory limit…) is not an exception: it is an
`ExecutionResult` whose `status` says how it ended. Nor is a job that failed, was cancelled
or expired: it is a `Job` whose `state` says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from wasmwiz_client.models import Job


class WasmWizClientError(Exception):
    """Base of every error the client raises."""


class ConnectionFailed(WasmWizClientError):
    """The request never got an HTTP response (DNS, refused connection, timeout…)."""


class UnsafePathError(WasmWizClientError, ValueError):
    """A collected file's path that cannot be written under a directory without leaving it
    (absolute, `..`, a backslash…). The service never sends one; the client checks anyway."""


class JobWaitTimeout(WasmWizClientError, TimeoutError):
    """`JobHandle.wait` ran out of time with the job still queued or running.

    The job goes on: `job` is how it was at the last look, and waiting again (or `get`)
    picks it up.
    """

    def __init__(self, job: Job, timeout: float) -> None:
        super().__init__(
            f"Job {job.id} is still {job.state} after {timeout:g} s of waiting "
            "(it goes on: wait again, or cancel it)"
        )
        self.job = job
        self.timeout = timeout


class UnexpectedResponse(WasmWizClientError):
    """A response that is neither an execution result nor problem details (e.g. a proxy page)."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response
        self.status = response.status_code


class ProblemError(WasmWizClientError):
    """The service refused the request with RFC 9457 problem details.

    Match on `code`: it is stable. `detail` is for people and may be reworded.
    """

    def __init__(self, problem: Mapping[str, Any], response: httpx.Response) -> None:
        self.problem: dict[str, Any] = dict(problem)
        self.response = response
        self.status: int = response.status_code
        self.code: str = str(problem.get("code") or "unknown")
        self.title: str = str(problem.get("title") or "")
        self.detail: str = str(problem.get("detail") or "")
        request_id = problem.get("request_id") or response.headers.get("x-request-id")
        self.request_id: str | None = str(request_id) if request_id else None
        self.retry_after: float | None = parse_retry_after(response.headers.get("retry-after"))
        super().__init__(f"{self.code}: {self.detail}" if self.detail else self.code)


class InvalidRequestError(ProblemError):
    """The request itself is malformed: a missing module, bad args or env, a bad query, or
    input files it refused (a bad path, a link, a damaged archive…)."""


class InvalidCasesError(InvalidRequestError):
    """A batch's `cases` (or `defaults`) are malformed, or too many.

    `case` is the index of the first bad case, or None when the list as a whole is bad.
    """

    def __init__(self, problem: Mapping[str, Any], response: httpx.Response) -> None:
        super().__init__(problem, response)
        self.case: int | None = _optional_index(problem.get("case"))


class InvalidFilesError(InvalidRequestError):
    """The run's input files or `collect` were refused before anything ran: a bad or
    duplicate path, a link or device in the archive, too many files, a damaged archive,
    files and an archive together, or a bad pattern. `code` says which, `detail` names
    the path or member."""


class InvalidCallbackURLError(InvalidRequestError):
    """A job's `callback_url` is not a URL the service will call."""


class WebhookURLRefusedError(InvalidRequestError):
    """A webhook endpoint's `url` is not one the service will deliver to."""


class AuthenticationError(ProblemError):
    """No key, or a key that is malformed, unknown, revoked or expired."""


class PermissionDeniedError(ProblemError):
    """The key's account may not do this (e.g. it is deactivated)."""


class StorageQuotaExceededError(PermissionDeniedError):
    """Storing the module would take the account past its tier's modules or bytes."""


class NotFoundError(ProblemError):
    """No such route or resource."""


class StoredModuleNotFoundError(NotFoundError):
    """No stored module of this account by that id or name."""


class JobNotFoundError(NotFoundError):
    """No job of this account by that id (or it is no longer kept)."""


class WebhookNotFoundError(NotFoundError):
    """No webhook endpoint of this account by that id."""


class ConflictError(ProblemError):
    """409: the request conflicts with the resource's state (a cap reached, a change)."""


class JobNotCancellableError(ConflictError):
    """The job is no longer queued (running, or in a final state): it cannot be cancelled."""


class PayloadTooLargeError(ProblemError):
    """The module, the input, the input files or the whole body is over the service's limit."""


class FilesTooLargeError(PayloadTooLargeError):
    """The input files are over the service's limit, an archive counted as it expands."""


class ModuleRejectedError(ProblemError):
    """The module cannot run: not WebAssembly, an unsupported import, no `_start`…"""


class LimitExceededError(ProblemError):
    """A per-key budget is spent; `retry_after` says when to try again.

    A refused batch says in `fits` how many of its cases the account could run now
    (None on any other refusal).
    """

    def __init__(self, problem: Mapping[str, Any], response: httpx.Response) -> None:
        super().__init__(problem, response)
        self.fits: int | None = _optional_index(problem.get("fits"))


class RateLimitedError(LimitExceededError):
    """The per-minute bucket is empty."""


class DailyQuotaExceededError(LimitExceededError):
    """Today's quota is spent; it resets at 00:00 UTC."""


class TooManyConcurrentError(LimitExceededError):
    """The key already has its tier's maximum of runs in flight."""


class JobQueueFullError(LimitExceededError):
    """The account has its cap of queued jobs: submit again once some have run."""


class ServiceUnavailableError(ProblemError):
    """The service cannot take the request now; retry with backoff."""


class ServerBusyError(ServiceUnavailableError):
    """Every execution slot is busy and the wait queue is full."""


class RateLimiterUnavailableError(ServiceUnavailableError):
    """The rate limiter cannot be reached and the service fails closed."""


class DatabaseUnavailableError(ServiceUnavailableError):
    """The service cannot reach its database now; the request itself was fine."""


_BY_CODE: dict[str, type[ProblemError]] = {
    "invalid_request": InvalidRequestError,
    "invalid_cases": InvalidCasesError,
    # A run's input files: refused by the request, not by the module.
    "invalid_file_path": InvalidFilesError,
    "duplicate_file_path": InvalidFilesError,
    "file_type_not_allowed": InvalidFilesError,
    "too_many_files": InvalidFilesError,
    "invalid_archive": InvalidFilesError,
    "files_and_archive": InvalidFilesError,
    "invalid_collect": InvalidFilesError,
    "files_too_large": FilesTooLargeError,
    "invalid_callback_url": InvalidCallbackURLError,
    "webhook_url_refused": WebhookURLRefusedError,
    "module_not_found": StoredModuleNotFoundError,
    "invalid_webhook_events": InvalidRequestError,
    "too_many_webhooks": ConflictError,
    "storage_quota_exceeded": StorageQuotaExceededError,
    "job_not_found": JobNotFoundError,
    "webhook_not_found": WebhookNotFoundError,
    "job_not_cancellable": JobNotCancellableError,
    "job_queue_full": JobQueueFullError,
    "rate_limited": RateLimitedError,
    "daily_quota_exceeded": DailyQuotaExceededError,
    "too_many_concurrent": TooManyConcurrentError,
    "server_busy": ServerBusyError,
    "rate_limiter_unavailable": RateLimiterUnavailableError,
    "database_unavailable": DatabaseUnavailableError,
}

_BY_STATUS: dict[int, type[ProblemError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ModuleRejectedError,
    429: LimitExceededError,
    503: ServiceUnavailableError,
}


def problem_class(status: int, code: str) -> type[ProblemError]:
    """The most specific exception class for a refusal: by code, then by status."""
    return _BY_CODE.get(code) or _BY_STATUS.get(status) or ProblemError


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds; WasmWiz always sends the delta-seconds form."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _optional_index(value: object) -> int | None:
    # bool is an int to Python, not a count or an index to anyone.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
