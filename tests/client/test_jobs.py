"""Jobs through the sync client against a real server: submit, wait, cancel, list, refusals.

The ones above the line need no server.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

import httpx
import pytest

from tests.api import wat
from tests.client.conftest import new_account
from tests.client.programs import echo_then_exit
from tests.client.test_files import COPY
from tests.fixtures.app import LiveServer, ServerFactory
from wasmwiz_client import (
    AuthenticationError,
    Client,
    ExecutionResult,
    InvalidCallbackURLError,
    InvalidRequestError,
    Job,
    JobError,
    JobNotCancellableError,
    JobNotFoundError,
    JobPage,
    JobQueueFullError,
    JobState,
    JobWaitTimeout,
    LimitExceededError,
    NotFoundError,
    Outcome,
    ProblemError,
    WebhookNotFoundError,
    WebhookURLRefusedError,
)
from wasmwiz_client._protocol import error_for, job_path, poll_delays

CALLBACK = "http://127.0.0.1:9/hooks/wasmwiz"

JOB_ID = "0b5a3c1e-8f7d-4c2b-9a61-3e2f1d0c9b8a"
# A job as the contract draws it, finished, with the exact JSON of an execute response.
FINISHED = {
    "id": JOB_ID,
    "state": "finished",
    "created_at": "2025-01-02T03:04:05.123456Z",
    "started_at": "2025-01-02T03:04:06+00:00",
    "finished_at": "2025-01-02T03:04:07+00:00",
    "expires_at": "2025-01-09T03:04:07+00:00",
    "attempts": 1,
    "timeout_seconds": 30.0,
    "callback_url": "https://example.com/hooks/wasmwiz",
    "result": {
        "execution_id": "9d1f0a5e-2b3c-4d5e-8f90-a1b2c3d4e5f6",
        "status": "exit_nonzero",
        "output": "AP8K",
        "stderr": "b29wcwo=",
        "encoding": "base64",
        "exit_code": 3,
        "error": None,
        "duration_ms": 1.5,
        "fuel_consumed": 1234,
        "memory_peak_bytes": 65536,
        "output_truncated": False,
        "stderr_truncated": False,
    },
    "error": None,
}


def test_a_finished_job_reads_as_its_result() -> None:
    job = Job.from_response(FINISHED)
    assert job.id == uuid.UUID(JOB_ID)
    assert job.state is JobState.FINISHED
    assert job.done
    assert job.created_at == datetime.fromisoformat("2025-01-02T03:04:05.123456+00:00")
    assert job.started_at is not None
    assert job.started_at.tzinfo is not None
    assert (job.attempts, job.timeout_seconds) == (1, 30.0)
    assert job.callback_url == "https://example.com/hooks/wasmwiz"
    assert job.error is None
    result = job.result
    assert isinstance(result, ExecutionResult)
    assert (result.status, result.exit_code) == (Outcome.EXIT_NONZERO, 3)
    assert (result.stdout, result.stderr) == (b"\x00\xff\n", b"oops\n")
    # They belong to the request that ran it, not to the one that read the job.
    assert (result.request_id, result.rate_limit) == (None, None)


def test_a_queued_failed_or_unknown_state() -> None:
    queued = Job.from_response(
        {
            **FINISHED,
            "state": "queued",
            "started_at": None,
            "finished_at": None,
            "expires_at": None,
            "attempts": 0,
            "callback_url": None,
            "result": None,
        }
    )
    assert (queued.state, queued.done, queued.result, queued.callback_url) == (
        JobState.QUEUED,
        False,
        None,
        None,
    )
    assert queued.started_at is None
    failed = Job.from_response(
        {**FINISHED, "state": "failed", "result": None, "error": {"code": "c", "detail": "d"}}
    )
    assert (failed.state, failed.done, failed.error) == (JobState.FAILED, True, JobError("c", "d"))
    # A state newer than this client is kept as a string, and is not taken for final.
    newer = Job.from_response({**FINISHED, "state": "paused", "result": None})
    assert (newer.state, newer.done) == ("paused", False)
    page = JobPage.from_response({"items": [FINISHED], "next_cursor": None})
    assert ([item.id for item in page.items], page.next_cursor) == ([uuid.UUID(JOB_ID)], None)


def test_polls_back_off_to_the_most() -> None:
    assert list(itertools.islice(poll_delays(1.0, 5.0), 6)) == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0]
    with pytest.raises(ValueError, match="poll_interval"):
        poll_delays(0, 5.0)
    with pytest.raises(ValueError, match="poll_interval"):
        poll_delays(2.0, 1.0)


@pytest.mark.parametrize("job_id", ["", "..", "x/y", "not-a-uuid", f"{JOB_ID}/cancel"])
def test_a_job_id_is_a_uuid_before_anything_is_sent(job_id: str) -> None:
    with pytest.raises(ValueError, match="not a job id"):
        job_path(job_id)
    # No server at this address: the ValueError comes first.
    with Client("http://127.0.0.1:9", "ww_x") as client, pytest.raises(ValueError):
        client.get_job(job_id)


def test_job_path_takes_a_uuid_or_its_text() -> None:
    assert job_path(uuid.UUID(JOB_ID)) == job_path(JOB_ID.upper()) == f"/api/v1/jobs/{JOB_ID}"


@pytest.mark.parametrize(
    ("status", "code", "cls", "base"),
    [
        (404, "job_not_found", JobNotFoundError, NotFoundError),
        (409, "job_not_cancellable", JobNotCancellableError, ProblemError),
        (429, "job_queue_full", JobQueueFullError, LimitExceededError),
        (400, "invalid_callback_url", InvalidCallbackURLError, InvalidRequestError),
        (404, "webhook_not_found", WebhookNotFoundError, NotFoundError),
        (400, "webhook_url_refused", WebhookURLRefusedError, InvalidRequestError),
    ],
)
def test_the_jobs_refusals_have_their_classes(
    status: int, code: str, cls: type[ProblemError], base: type[ProblemError]
) -> None:
    response = httpx.Response(
        status,
        json={"status": status, "code": code, "detail": "d"},
        headers={"content-type": "application/problem+json"},
        request=httpx.Request("GET", f"http://x/api/v1/jobs/{JOB_ID}"),
    )
    error = error_for(response)
    assert type(error) is cls
    assert isinstance(error, base)


def test_the_wait_timeout_says_the_job_goes_on() -> None:
    job = Job.from_response({**FINISHED, "state": "running", "result": None})
    error = JobWaitTimeout(job, 2.5)
    assert isinstance(error, TimeoutError)
    assert (error.job, error.timeout) == (job, 2.5)
    assert str(error) == f"Job {JOB_ID} is still running after 2.5 s of waiting " + (
        "(it goes on: wait again, or cancel it)"
    )


# ---- Against the jobs API ----------------------------------------------------------------


def test_submit_answers_at_once_and_wait_returns_the_result(
    server_factory: ServerFactory, api_key: str
) -> None:
    payload = bytes(range(256)) * 8
    # A callback on this machine: allowed only where private targets are.
    server = server_factory(webhook_allow_private_targets=True)
    with Client(server.url, api_key) as client:
        handle = client.submit(
            echo_then_exit(5, b"warn\xff\n").encode(),
            input=payload,
            filename="echo.wat",
            callback_url=CALLBACK,
        )
        submitted = handle.job
        job = handle.wait(timeout=60, poll_interval=0.05)
        again = client.get_job(handle.id)
    assert submitted is not None
    assert submitted.id == handle.id
    assert submitted.state in (JobState.QUEUED, JobState.RUNNING, JobState.FINISHED)
    assert submitted.callback_url == CALLBACK
    assert job.state is JobState.FINISHED
    assert handle.job == job
    assert job.done
    assert job.finished_at is not None
    assert job.finished_at >= job.created_at
    assert job.attempts >= 1
    assert job.error is None
    assert job.result is not None
    assert (job.result.status, job.result.exit_code) == (Outcome.EXIT_NONZERO, 5)
    assert (job.result.stdout, job.result.stderr) == (payload, b"warn\xff\n")
    assert again == job


def test_submit_takes_every_execute_option(server: LiveServer, api_key: str) -> None:
    options = {
        "args": ["-n", "two words"],
        "env": {"LANG": "C"},
        "deterministic": True,
        "seed": 7,
        "cache": False,
    }
    with Client(server.url, api_key) as client:
        ran = client.execute(wat.ARGS_AND_ENV.encode(), filename="show.wat", **options)
        job = client.submit(wat.ARGS_AND_ENV.encode(), filename="show.wat", **options).wait(60)
        client.upload_module(wat.ECHO.encode(), name="echo")
        by_name = client.submit(module="echo", input="stored\n").wait(60)
    assert job.result is not None
    assert job.result.stdout == ran.stdout == b"show.wat\n-n\ntwo words\n-\nLANG=C\n"
    assert by_name.result is not None
    assert by_name.result.stdout == b"stored\n"


def test_a_job_with_files_collects_them(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        job = client.submit(COPY, files={"in.txt": b"job input"}, collect=["out/*"]).wait(60)
    assert job.result is not None
    assert [(item.path, item.content) for item in job.result.files] == [
        ("out/in.txt", b"job input")
    ]


def test_wait_gives_up_at_its_timeout_and_the_job_goes_on(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        # Fuel, not the job's time limit, ends it: it runs a while whatever that limit is.
        handle = client.submit(wat.INFINITE_LOOP.encode(), max_fuel=2_000_000_000)
        with pytest.raises(JobWaitTimeout) as info:
            handle.wait(timeout=0.05, poll_interval=0.01)
        job = handle.wait(timeout=60)
    assert info.value.job.id == handle.id
    assert info.value.job.state in (JobState.QUEUED, JobState.RUNNING)
    assert info.value.timeout == 0.05
    assert job.state is JobState.FINISHED
    assert job.result is not None
    assert job.result.status in (Outcome.FUEL_EXHAUSTED, Outcome.TIMEOUT)


def test_cancel(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        done = client.submit(wat.HELLO.encode())
        done.wait(60)
        with pytest.raises(JobNotCancellableError) as finished:
            done.cancel()
        handle = client.submit(wat.INFINITE_LOOP.encode(), max_fuel=2_000_000_000)
        try:
            cancelled: Job | None = handle.cancel()
        except JobNotCancellableError:  # a worker took it first: nothing left to check
            cancelled = None
        if cancelled is not None:
            assert cancelled.state is JobState.CANCELLED
            assert cancelled.result is None
            assert handle.wait(timeout=1) == client.get_job(handle.id) == cancelled
            listed = [job.id for job in client.iter_jobs(state=JobState.CANCELLED)]
            assert listed == [handle.id]
            with pytest.raises(JobNotCancellableError):
                client.cancel_job(handle.id)
        else:
            handle.wait(60)
    assert (finished.value.status, finished.value.code) == (409, "job_not_cancellable")


def test_list_jobs_newest_first_a_page_at_a_time(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        handles = [client.submit(wat.HELLO.encode()) for _ in range(3)]
        for handle in handles:
            handle.wait(60)
        first = client.list_jobs(limit=2)
        second = client.list_jobs(limit=2, cursor=first.next_cursor)
        every = list(client.iter_jobs(page_size=2))
        finished = list(client.iter_jobs(state="finished"))
        queued = client.list_jobs(state=JobState.QUEUED)
    newest_first = [handle.id for handle in reversed(handles)]
    assert [job.id for job in first.items] == newest_first[:2]
    assert first.next_cursor is not None
    assert [job.id for job in second.items] == newest_first[2:]
    assert second.next_cursor is None
    assert [job.id for job in every] == [job.id for job in finished] == newest_first
    assert queued.items == ()


def test_another_account_s_job_is_not_found(
    server: LiveServer, api_key: str, migrated_database_url: str
) -> None:
    other = new_account(migrated_database_url).api_key
    with Client(server.url, api_key) as client:
        handle = client.submit(wat.HELLO.encode())
    with Client(server.url, other) as client:
        with pytest.raises(JobNotFoundError) as info:
            client.get_job(handle.id)
        with pytest.raises(JobNotFoundError):
            client.cancel_job(handle.id)
        with pytest.raises(JobNotFoundError):
            client.job(uuid.uuid4()).wait(timeout=5)
        assert list(client.iter_jobs()) == []
    assert (info.value.status, info.value.code) == (404, "job_not_found")


def test_refusals_of_a_submit(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        with pytest.raises(InvalidRequestError) as env:
            client.submit(wat.HELLO.encode(), env={"A=B": "c"})
        with pytest.raises(InvalidCallbackURLError) as callback:
            client.submit(wat.HELLO.encode(), callback_url="not a url")
        assert list(client.iter_jobs()) == []
    with Client(server.url, "ww_" + "x" * 40) as client, pytest.raises(AuthenticationError):
        client.submit(wat.HELLO.encode())
    assert (env.value.status, env.value.code) == (400, "invalid_env")
    assert (callback.value.status, callback.value.code) == (400, "invalid_callback_url")
