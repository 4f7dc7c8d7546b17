"""The blocking client: `Client(base_url, api_key).execute(wasm, input=…)`, stored modules,
batches, and jobs (`submit`, then a `JobHandle` to wait for it)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from wasmwiz_client._files import ArchiveSource, InputFiles
from wasmwiz_client._protocol import (
    BATCH_PATH,
    DEFAULT_TIMEOUT,
    EXECUTE_PATH,
    JOBS_PATH,
    MAX_PAGE_SIZE,
    MAX_POLL_INTERVAL,
    MODULES_PATH,
    POLL_INTERVAL,
    Encoding,
    InputSource,
    RetryPolicy,
    WasmSource,
    batch_request,
    client_headers,
    error_for,
    execute_request,
    job_params,
    job_path,
    module_path,
    name_path,
    normalize_base_url,
    page_params,
    poll_delays,
    read_batch,
    read_execution,
    read_health,
    read_job,
    read_job_page,
    read_module,
    read_module_page,
    read_no_content,
    resolve_retry,
    settings_from_env,
    submit_request,
    upload_request,
)
from wasmwiz_client.errors import ConnectionFailed, JobWaitTimeout
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


class Client:
    """A WasmWiz API client over one pooled httpx connection.

    `retry` is off by default: pass `True` (or a `RetryPolicy`) to wait out 429 and 503
    refusals of any request as `Retry-After` says. `transport` and `sleep` are seams for
    tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        retry: RetryPolicy | bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._retry = resolve_retry(retry)
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=normalize_base_url(base_url),
            headers=client_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(
        cls, base_url: str | None = None, api_key: str | None = None, **options: Any
    ) -> Client:
        """A client for `WASMWIZ_URL` with `WASMWIZ_API_KEY`, unless given explicitly."""
        url, key = settings_from_env(base_url, api_key)
        return cls(url, key, **options)

    def execute(
        self,
        wasm: WasmSource | None = None,
        *,
        module: str | None = None,
        input: InputSource = None,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        filename: str | None = None,
        deterministic: bool | None = None,
        seed: int | None = None,
        max_fuel: int | None = None,
        cache: bool | None = None,
        files: InputFiles | None = None,
        archive: ArchiveSource | None = None,
        collect: Sequence[str] | None = None,
    ) -> ExecutionResult:
        """Run a module: `wasm` is its bytes (binary or WAT text) or a path to its file, or
        `module` is a stored module's id or name (one of the two; ValueError otherwise).

        `deterministic` runs it on virtual clocks with `random_get` seeded by `seed`, so
        the same request prints the same bytes; `max_fuel` caps the work it may do.
        A deterministic run with a `seed` may be answered from the service's result
        cache (the result's `cached` is then true); `cache=False` always runs it.

        `files` puts files in the run's directory, which the program sees at `/`: a mapping
        of path there (`data/in.csv`) to content (bytes, a Path, or a binary file), or a
        list of (path, content) pairs. Or `archive`, a tar, tar.gz or zip (bytes or a path)
        expanded there; not both. `collect` (glob patterns: `["out/*"]`, `["**"]`) asks for
        the files the run leaves, returned in the result's `files` (`write_files` saves
        them under a directory).

        Returns the result whatever the program did (check `.status`); raises a
        `ProblemError` subclass when the service refuses the request.
        """
        request = execute_request(
            wasm,
            module=module,
            input=input,
            args=args,
            env=env,
            filename=filename,
            deterministic=deterministic,
            seed=seed,
            max_fuel=max_fuel,
            cache=cache,
            files=files,
            archive=archive,
            collect=collect,
        )
        return read_execution(self._request("POST", EXECUTE_PATH, **request))

    def submit(
        self,
        wasm: WasmSource | None = None,
        *,
        module: str | None = None,
        input: InputSource = None,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        filename: str | None = None,
        deterministic: bool | None = None,
        seed: int | None = None,
        max_fuel: int | None = None,
        cache: bool | None = None,
        files: InputFiles | None = None,
        archive: ArchiveSource | None = None,
        collect: Sequence[str] | None = None,
        callback_url: str | None = None,
    ) -> JobHandle:
        """Queue a run to happen later, and return at once: `execute`'s arguments, and
        `callback_url`, a URL the service POSTs the finished job to.

        The handle's `wait()` polls until the job is final and returns the `Job` (its
        `result` is what `execute` would have returned); `cancel()` takes it off the queue.
        A refusal raises as `execute` does, and `JobQueueFullError` when the account has
        its cap of queued jobs.
        """
        request = submit_request(
            callback_url,
            wasm=wasm,
            module=module,
            input=input,
            args=args,
            env=env,
            filename=filename,
            deterministic=deterministic,
            seed=seed,
            max_fuel=max_fuel,
            cache=cache,
            files=files,
            archive=archive,
            collect=collect,
        )
        job = read_job(self._request("POST", JOBS_PATH, **request))
        return JobHandle(self, job.id, job)

    def job(self, job_id: uuid.UUID | str) -> JobHandle:
        """A handle on a job submitted before (by id), to wait for or cancel; sends nothing."""
        job_path(job_id)  # a ValueError now for what is not a job id
        return JobHandle(self, uuid.UUID(str(job_id)))

    def get_job(self, job_id: uuid.UUID | str) -> Job:
        """A job of this account, as it is now; `JobNotFoundError` if there is none."""
        return read_job(self._request("GET", job_path(job_id), params=job_params()))

    def cancel_job(self, job_id: uuid.UUID | str) -> Job:
        """Take a queued job off the queue and return it, `cancelled`;
        `JobNotCancellableError` once it is running or done."""
        return read_job(self._request("DELETE", job_path(job_id), params=job_params()))

    def list_jobs(
        self,
        *,
        state: JobState | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of the account's jobs, newest first, perhaps of one `state` only
        (`iter_jobs` walks them all)."""
        params = job_params(state, limit, cursor)
        return read_job_page(self._request("GET", JOBS_PATH, params=params))

    def iter_jobs(
        self, *, state: JobState | str | None = None, page_size: int | None = None
    ) -> Iterator[Job]:
        """Every job of the account (of one `state`), newest first, a page at a time
        (of the service's default size unless `page_size` says)."""
        cursor: str | None = None
        while True:
            page = self.list_jobs(state=state, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def run_batch(
        self,
        cases: Iterable[BatchCase | Mapping[str, Any]],
        *,
        wasm: WasmSource | None = None,
        module: str | None = None,
        defaults: BatchCase | Mapping[str, Any] | None = None,
        filename: str | None = None,
        deterministic: bool | None = None,
        seed: int | None = None,
        max_fuel: int | None = None,
        encoding: Encoding = "base64",
    ) -> BatchResult:
        """Run one module on many inputs in one request: a result per case, in order.

        A case is a `BatchCase` or a mapping with the API's keys (`stdin` or
        `stdin_base64`, `args`, `env`); `defaults` fills the keys a case lacks. A case
        that fails is a result, not an exception; a refused batch raises (a bad case:
        `InvalidCasesError`, whose `case` is its index).
        """
        request = batch_request(
            cases,
            wasm=wasm,
            module=module,
            defaults=defaults,
            filename=filename,
            deterministic=deterministic,
            seed=seed,
            max_fuel=max_fuel,
            encoding=encoding,
        )
        return read_batch(self._request("POST", BATCH_PATH, **request))

    def upload_module(
        self, wasm: WasmSource, name: str | None = None, *, filename: str | None = None
    ) -> StoredModule:
        """Store a module (its bytes or a path) to run by reference; `name` names it too.

        Uploading bytes the account stored before returns the same module.
        """
        request = upload_request(wasm, name, filename)
        return read_module(self._request("POST", MODULES_PATH, **request))

    def list_modules(self, *, limit: int | None = None, cursor: str | None = None) -> ModulePage:
        """One page of the account's modules, newest first (`iter_modules` walks them all)."""
        params = page_params(limit, cursor)
        return read_module_page(self._request("GET", MODULES_PATH, params=params))

    def iter_modules(self, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[StoredModule]:
        """Every stored module of the account, newest first, fetched a page at a time."""
        cursor: str | None = None
        while True:
            page = self.list_modules(limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_module(self, reference: str) -> StoredModule:
        """A stored module by id or name; `StoredModuleNotFoundError` if the account has none."""
        return read_module(self._request("GET", module_path(reference)))

    def delete_module(self, reference: str) -> None:
        """Delete a stored module (by id or name) and every name pointing at it."""
        read_no_content(self._request("DELETE", module_path(reference)))

    def tag_module(self, name: str, reference: str) -> StoredModule:
        """Point `name` at a stored module (by id or another name), creating or moving it."""
        target = {"module": reference}
        return read_module(self._request("PUT", name_path(name), json=target))

    def untag_module(self, name: str) -> None:
        """Remove a name; the module it pointed at stays."""
        read_no_content(self._request("DELETE", name_path(name)))

    def health(self) -> dict[str, Any]:
        """The service's health checks; a 503 (a check failing) is returned, not raised."""
        return read_health(self._send("GET", "/health"))

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send, waiting out refusals as the retry policy says; the last answer is returned
        (or, when the policy gives up, raised)."""
        attempt = 0
        while True:
            response = self._send(method, path, **kwargs)
            if response.is_success or self._retry is None:
                return response
            error = error_for(response)
            delay = self._retry.delay(error, attempt)
            if delay is None:
                raise error
            self._sleep(delay)
            attempt += 1

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"Could not reach {self._http.base_url}: {exc}") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class JobHandle:
    """A job submitted to the service: `wait()` for it, `get()` it as it is, `cancel()` it.

    `job` is the job as this handle last saw it (None before it has looked).
    """

    def __init__(self, client: Client, job_id: uuid.UUID, job: Job | None = None) -> None:
        self._client = client
        self.id = job_id
        self.job = job

    def get(self) -> Job:
        """The job as it is now."""
        self.job = self._client.get_job(self.id)
        return self.job

    def cancel(self) -> Job:
        """Take it off the queue (`JobNotCancellableError` once it is running or done)."""
        self.job = self._client.cancel_job(self.id)
        return self.job

    def wait(
        self,
        timeout: float | None = None,
        *,
        poll_interval: float = POLL_INTERVAL,
        max_poll_interval: float = MAX_POLL_INTERVAL,
    ) -> Job:
        """Poll until the job is final (finished, failed, cancelled or expired) and return it.

        The polls start `poll_interval` apart and back off to `max_poll_interval`. With a
        `timeout` (seconds), `JobWaitTimeout` is raised once it has passed with the job
        still queued or running; the job itself goes on. A failed job is returned, not
        raised: its `state` and `error` say what happened.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delays = poll_delays(poll_interval, max_poll_interval)
        while True:
            job = self.get()
            if job.done:
                return job
            delay = next(delays)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobWaitTimeout(job, float(timeout or 0))
                delay = min(delay, remaining)
            self._client._sleep(delay)

    def __repr__(self) -> str:
        state = self.job.state if self.job is not None else "unknown"
        return f"<JobHandle {self.id} {state}>"
