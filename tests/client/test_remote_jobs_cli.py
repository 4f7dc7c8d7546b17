"""`wasmwiz remote run --async` and `remote jobs` as a shell runs them: a subprocess, byte
streams and exit codes.

The tests against the jobs API skip, saying "jobs API not on this branch", on a server
without it; the ones refused before anything is sent need no server.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from tests.api import wat
from tests.client.conftest import remote
from tests.client.programs import echo_then_exit
from tests.client.test_files import COPY
from tests.fixtures.app import LiveServer, ServerFactory
from wasmwiz_client import Client, JobState

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a test there proves nothing was sent


def submitted(server: LiveServer, api_key: str, *args: str, stdin: bytes = b"") -> uuid.UUID:
    """`remote run --async ARGS`: exit 0 and the job's id on stdout, nothing else."""
    done = remote(server, api_key, "run", "--async", *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert done.stdout.endswith(b"\n")
    assert done.stdout.count(b"\n") == 1
    return uuid.UUID(done.stdout.decode().strip())


def refused(done: subprocess.CompletedProcess[bytes], code: str) -> None:
    assert done.returncode == 126, done.stderr
    assert done.stdout == b""
    assert done.stderr.startswith(f"wasmwiz: {code}: ".encode()), done.stderr
    assert done.stderr.count(b"\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "get", "not-a-uuid"], b"not a job id (a UUID): 'not-a-uuid'"),
        (["jobs", "wait", "../modules"], b"not a job id (a UUID): '../modules'"),
        (["jobs", "cancel", ""], b"not a job id (a UUID): ''"),
        (["jobs", "list", "--state", "done"], b"invalid choice: 'done'"),
        (["jobs", "wait", str(uuid.uuid4()), "--timeout", "soon"], b"invalid float value"),
        (
            ["run", "--async", "m.wasm", "--collect", "out/*", "--output-dir", "out"],
            b"with --async, --output-dir goes to `remote jobs wait ID`",
        ),
    ],
)
def test_bad_usage_is_exit_2_and_sends_nothing(args: list[str], message: bytes) -> None:
    done = remote(None, "ww_x", *args, url=NOWHERE)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stdout == b""


def test_the_service_unreachable_is_exit_1(tmp_path: Path) -> None:
    module = tmp_path / "hello.wat"
    module.write_text(wat.HELLO)
    for args in (["run", "--async", str(module)], ["jobs", "get", str(uuid.uuid4())]):
        done = remote(None, "ww_x", *args, url=NOWHERE)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith(b"wasmwiz: Could not reach ")
        assert done.stdout == b""


# ---- Against the jobs API ----------------------------------------------------------------


def test_run_async_then_wait_is_run(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    module = tmp_path / "echo.wat"
    module.write_text(echo_then_exit(42, b"to stderr \xff\n"))
    payload = bytes(range(256)) * 16
    job_id = submitted(server, api_key, str(module), "--input", "-", stdin=payload)

    waited = remote(server, api_key, "jobs", "wait", str(job_id))
    again = remote(server, api_key, "jobs", "wait", str(job_id), "--timeout", "5")

    for done in (waited, again):
        assert done.returncode == 42, done.stderr
        assert done.stdout == payload
        assert done.stderr == b"to stderr \xff\n"


def test_wait_reports_a_run_stopped_by_the_sandbox(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    module = tmp_path / "trap.wat"
    module.write_text(wat.UNREACHABLE)
    job_id = submitted(server, api_key, str(module))
    done = remote(server, api_key, "jobs", "wait", str(job_id))
    assert done.returncode == 125
    assert done.stderr.startswith(b"wasmwiz: trap: ")
    assert done.stderr.count(b"\n") == 1


def test_async_with_args_env_a_stored_module_and_collected_files(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    module = tmp_path / "args.wat"
    module.write_text(wat.ARGS_AND_ENV)
    shown = submitted(server, api_key, str(module), "--env", "A=b c", "--", "-n", "x y")
    assert remote(server, api_key, "jobs", "wait", str(shown)).stdout == (
        b"args.wat\n-n\nx y\n-\nA=b c\n"
    )

    with Client(server.url, api_key) as client:
        client.upload_module(COPY, name="copy")
    local = tmp_path / "in.txt"
    local.write_bytes(b"collected later\n")
    copied = submitted(server, api_key, "copy", "--file", str(local), "--collect", "out/*")
    results = tmp_path / "results"
    done = remote(server, api_key, "jobs", "wait", str(copied), "--output-dir", str(results))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"copied 16 bytes\n"
    assert done.stderr == f"wasmwiz: wrote {results / 'out' / 'in.txt'} (16 bytes)\n".encode()
    assert (results / "out" / "in.txt").read_bytes() == b"collected later\n"


def test_wait_timeout_is_exit_75_and_the_job_goes_on(
    server_factory: ServerFactory, api_key: str, tmp_path: Path
) -> None:
    server = server_factory(queue_workers=0)  # takes jobs, runs none: this one waits
    module = tmp_path / "loop.wat"
    module.write_text(wat.INFINITE_LOOP)
    job_id = submitted(server, api_key, str(module), "--max-fuel", "2000000000")
    done = remote(server, api_key, "jobs", "wait", str(job_id), "--timeout", "0.05")
    assert done.returncode == 75, done.stderr
    assert done.stdout == b""
    assert done.stderr.startswith(f"wasmwiz: Job {job_id} is still ".encode())
    assert done.stderr.count(b"\n") == 1
    with Client(server.url, api_key) as client:
        assert client.get_job(job_id).state is JobState.QUEUED


def test_get_list_and_cancel(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    module = tmp_path / "exit.wat"
    module.write_text(echo_then_exit(3, b""))
    first = submitted(server, api_key, str(module))
    second = submitted(server, api_key, str(module))
    for job_id in (first, second):
        assert remote(server, api_key, "jobs", "wait", str(job_id)).returncode == 3

    got = remote(server, api_key, "jobs", "get", str(first))
    assert got.returncode == 0, got.stderr
    (line,) = got.stdout.decode().splitlines()
    job_id, state, created, finished, outcome = line.split("\t")
    assert (job_id, state, outcome) == (str(first), "finished", "exit_nonzero")
    assert created.endswith("Z")
    assert finished.endswith("Z")

    listed = remote(server, api_key, "jobs", "list")
    assert listed.returncode == 0, listed.stderr
    assert [row.split("\t")[0] for row in listed.stdout.decode().splitlines()] == [
        str(second),
        str(first),
    ]
    queued = remote(server, api_key, "jobs", "list", "--state", "queued")
    assert (queued.returncode, queued.stdout) == (0, b"")

    refused(remote(server, api_key, "jobs", "cancel", str(first)), "job_not_cancellable")
    missing = str(uuid.uuid4())
    refused(remote(server, api_key, "jobs", "get", missing), "job_not_found")
    refused(remote(server, api_key, "jobs", "wait", missing), "job_not_found")


def test_cancel_a_queued_job(server: LiveServer, api_key: str, tmp_path: Path) -> None:
    module = tmp_path / "loop.wat"
    module.write_text(wat.INFINITE_LOOP)
    job_id = submitted(server, api_key, str(module), "--max-fuel", "2000000000")
    cancel = remote(server, api_key, "jobs", "cancel", str(job_id))
    if cancel.returncode != 0:  # a worker took it first: nothing left to check
        refused(cancel, "job_not_cancellable")
        return
    assert (cancel.stdout, cancel.stderr) == (b"", b"")
    with Client(server.url, api_key) as client:
        assert client.get_job(job_id).state is JobState.CANCELLED
    done = remote(server, api_key, "jobs", "wait", str(job_id))
    assert done.returncode == 126
    assert done.stderr == f"wasmwiz: job {job_id} cancelled: it has no result\n".encode()


def test_a_refused_submit_is_one_line_and_exit_126(
    server: LiveServer, api_key: str, tmp_path: Path
) -> None:
    module = tmp_path / "lib.wat"
    module.write_text('(module (memory (export "memory") 1))')
    # The module is judged when the job runs: the job fails with the code a synchronous
    # run is refused with, and waiting for it says so in one line.
    job_id = submitted(server, api_key, str(module))
    waited = remote(server, api_key, "jobs", "wait", str(job_id))
    assert waited.returncode == 126, waited.stderr
    assert b"missing_start" in waited.stderr
    assert waited.stderr.count(b"\n") == 1
    refused(remote(server, "ww_wrong", "jobs", "list"), "unauthorized")
