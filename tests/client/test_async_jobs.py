"""Jobs through the asyncio client against a real server: the sync client's contract.

They skip, saying "jobs API not on this branch", on a server without the jobs API.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.api import wat
from tests.client.programs import echo_then_exit
from tests.fixtures.app import LiveServer
from wasmwiz_client import (
    AsyncClient,
    AsyncJobHandle,
    InvalidCallbackURLError,
    JobNotCancellableError,
    JobNotFoundError,
    JobState,
    JobWaitTimeout,
    Outcome,
)

pytestmark = pytest.mark.anyio


async def test_a_job_id_is_checked_before_anything_is_sent() -> None:
    async with AsyncClient("http://127.0.0.1:9", "ww_x") as client:
        with pytest.raises(ValueError, match="not a job id"):
            client.job("../modules")
        with pytest.raises(ValueError, match="not a job id"):
            await client.cancel_job("x")
        handle = client.job(uuid.UUID(int=1))
    assert isinstance(handle, AsyncJobHandle)
    assert (handle.id, handle.job) == (uuid.UUID(int=1), None)


async def test_submit_wait_and_list(server: LiveServer, api_key: str) -> None:
    async with AsyncClient(server.url, api_key) as client:
        handles = await asyncio.gather(
            *(client.submit(echo_then_exit(i, b"").encode(), input=f"{i}") for i in range(3))
        )
        jobs = await asyncio.gather(*(handle.wait(60, poll_interval=0.05) for handle in handles))
        listed = [job.id async for job in client.iter_jobs(page_size=2)]
        page = await client.list_jobs(state=JobState.FINISHED, limit=10)
    assert [job.state for job in jobs] == [JobState.FINISHED] * 3
    assert [(job.result.text, job.result.exit_code) for job in jobs if job.result] == [
        ("0", 0),
        ("1", 1),
        ("2", 2),
    ]
    assert jobs[1].result is not None
    assert jobs[1].result.status is Outcome.EXIT_NONZERO
    assert sorted(listed) == sorted(handle.id for handle in handles)
    assert {job.id for job in page.items} == set(listed)


async def test_wait_timeout_cancel_and_refusals(server: LiveServer, api_key: str) -> None:
    async with AsyncClient(server.url, api_key) as client:
        long = await client.submit(wat.INFINITE_LOOP.encode(), max_fuel=2_000_000_000)
        with pytest.raises(JobWaitTimeout) as info:
            await long.wait(timeout=0.05, poll_interval=0.01)
        assert info.value.job.state in (JobState.QUEUED, JobState.RUNNING)
        assert (await long.wait(60)).state is JobState.FINISHED
        with pytest.raises(JobNotCancellableError):
            await long.cancel()
        with pytest.raises(JobNotFoundError):
            await client.get_job(uuid.uuid4())
        with pytest.raises(InvalidCallbackURLError):
            await client.submit(wat.HELLO.encode(), callback_url="not a url")
