"""The asyncio client: `await AsyncClient(base_url, api_key).execute(wasm, input=…)`,
stored modules, batches, and jobs (`submit`, then an `AsyncJobHandle` to wait for it)."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from wasmwiz_client._files import ArchiveSource, InputFiles, has_local_reads
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

T = TypeVar("T")


class AsyncClient:
    """An asyncio WasmWiz API client over one pooled httpx connection.

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
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._retry = resolve_retry(retry)
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=normalize_base_url(base_url),
            headers=client_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_env(
        cls, base_url: str | None = None, api_key: str | None = None, **options: Any
    ) -> AsyncClient:
        """A client for `WASMWIZ_URL` with `WASMWIZ_API_KEY`, unless given explicitly."""
        url, key = settings_from_env(base_url, api_key)
        return cls(url, key, **options)

    async def execute(
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
        build = functools.partial(
            execute_request,
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
        request = await _off_loop_for_paths(wasm, build, has_local_reads(files, archive))
        return read_execution(await self._request("POST", EXECUTE_PATH, **request))

    async def submit(
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
    ) -> AsyncJobHandle:
        """Queue a run to happen later, and return at once: `execute`'s arguments, and
        `callback_url`, a URL the service POSTs the finished job to.

        The handle's `wait()` polls until the job is final and returns the `Job` (its
        `result` is what `execute` would have returned); `cancel()` takes it off the queue.
        A refusal raises as `execute` does, and `JobQueueFullError` when the account has
        its cap of queued jobs.
        """
        build = functools.partial(
            submit_request,
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
        request = await _off_loop_for_paths(wasm, build, has_local_reads(files, archive))
        job = read_job(await self._request("POST", JOBS_PATH, **request))
        return AsyncJobHandle(self, job.id, job)

    def job(self, job_id: uuid.UUID | str) -> AsyncJobHandle:
        """A handle on a job submitted before (by id), to wait for or cancel; sends nothing."""
        job_path(job_id)  # a ValueError now for what is not a job id
        return AsyncJobHandle(self, uuid.UUID(str(job_id)))

    async def get_job(self, job_id: uuid.UUID | str) -> Job:
        """A job of this account, as it is now; `JobNotFoundError` if there is none."""
        return read_job(await self._request("GET", job_path(job_id), params=job_params()))

    async def cancel_job(self, job_id: uuid.UUID | str) -> Job:
        """Take a queued job off the queue and return it, `cancelled`;
        `JobNotCancellableError` once it is running or done."""
        return read_job(await self._request("DELETE", job_path(job_id), params=job_params()))

    async def list_jobs(
        self,
        *,
        state: JobState | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of the account's jobs, newest first, perhaps of one `state` only
        (`iter_jobs` walks them all)."""
        params = job_params(state, limit, cursor)
        return read_job_page(await self._request("GET", JOBS_PATH, params=params))

    async def iter_jobs(
        self, *, state: JobState | str | None = None, page_size: int | None = None
    ) -> AsyncIterator[Job]:
        """Every job of the account (of one `state`), newest first, a page at a time
        (of the service's default size unless `page_size` says)."""
        cursor: str | None = None
        while True:
            page = await self.list_jobs(state=state, limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def run_batch(
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
        build = functools.partial(
            batch_request,
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
        request = await _off_loop_for_paths(wasm, build)
        return read_batch(await self._request("POST", BATCH_PATH, **request))

    async def upload_module(
        self, wasm: WasmSource, name: str | None = None, *, filename: str | None = None
    ) -> StoredModule:
        """Store a module (its bytes or a path) to run by reference; `name` names it too.

        Uploading bytes the account stored before returns the same module.
        """
        build = functools.partial(upload_request, wasm, name, filename)
        request = await _off_loop_for_paths(wasm, build)
        return read_module(await self._request("POST", MODULES_PATH, **request))

    async def list_modules(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> ModulePage:
        """One page of the account's modules, newest first (`iter_modules` walks them all)."""
        params = page_params(limit, cursor)
        return read_module_page(await self._request("GET", MODULES_PATH, params=params))

    async def iter_modules(self, *, page_size: int = MAX_PAGE_SIZE) -> AsyncIterator[StoredModule]:
        """Every stored module of the account, newest first, fetched a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.list_modules(limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_module(self, reference: str) -> StoredModule:
        """A stored module by id or name; `StoredModuleNotFoundError` if the account has none."""
        return read_module(await self._request("GET", module_path(reference)))

    async def delete_module(self, reference: str) -> None:
        """Delete a stored module (by id or name) and every name pointing at it."""
        read_no_content(await self._request("DELETE", module_path(reference)))

    async def tag_module(self, name: str, reference: str) -> StoredModule:
        """Point `name` at a stored module (by id or another name), creating or moving it."""
        target = {"module": reference}
        return read_module(await self._request("PUT", name_path(name), json=target))

    async def untag_module(self, name: str) -> None:
        """Remove a name; the module it pointed at stays."""
        read_no_content(await self._request("DELETE", name_path(name)))

    async def health(self) -> dict[str, Any]:
        """The service's health checks; a 503 (a check failing) is returned, not raised."""
        return read_health(await self._send("GET", "/health"))

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send, waiting out refusals as the retry policy says; the last answer is returned
        (or, when the policy gives up, raised)."""
        attempt = 0
        while True:
            response = await self._send(method, path, **kwargs)
            if response.is_success or self._retry is None:
                return response
            error = error_for(response)
            delay = self._retry.delay(error, attempt)
            if delay is None:
                raise error
            await self._sleep(delay)
            attempt += 1

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"Could not reach {self._http.base_url}: {exc}") from exc

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncJobHandle:
    """A job submitted to the service: `await wait()` for it, `get()` it, `cancel()` it.

    `job` is the job as this handle last saw it (None before it has looked).
    """

    def __init__(self, client: AsyncClient, job_id: uuid.UUID, job: Job | None = None) -> None:
        self._client = client
        self.id = job_id
        self.job = job

    async def get(self) -> Job:
        """The job as it is now."""
        self.job = await self._client.get_job(self.id)
        return self.job

    async def cancel(self) -> Job:
        """Take it off the queue (`JobNotCancellableError` once it is running or done)."""
        self.job = await self._client.cancel_job(self.id)
        return self.job

    async def wait(
        self,
        # The sync handle's argument, and not asyncio.timeout's job: running out here is
        # JobWaitTimeout with the job as last seen, and never cuts a poll off halfway.
        timeout: float | None = None,  # noqa: ASYNC109
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
            job = await self.get()
            if job.done:
                return job
            delay = next(delays)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobWaitTimeout(job, float(timeout or 0))
                delay = min(delay, remaining)
            await self._client._sleep(delay)

    def __repr__(self) -> str:
        state = self.job.state if self.job is not None else "unknown"
        return f"<AsyncJobHandle {self.id} {state}>"


async def _off_loop_for_paths(
    wasm: WasmSource | None, build: Callable[[], T], reads_files: bool = False
) -> T:
    """Build a request, on a worker thread when it reads a module or a run's file from a
    path or a file object (file I/O stays off the event loop)."""
    if not reads_files and (wasm is None or isinstance(wasm, bytes)):
        return build()
    return await asyncio.to_thread(build)
