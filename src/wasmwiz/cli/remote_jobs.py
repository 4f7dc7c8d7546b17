"""`wasmwiz remote jobs`: the runs `remote run --async` queued: see, wait for, cancel, list."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import BinaryIO

from wasmwiz.cli.remote_calls import EXIT_REFUSED, add_retry_flag, fail, with_client
from wasmwiz.cli.remote_report import report
from wasmwiz_client import Client, Job, JobState, JobWaitTimeout

EXIT_NOT_DONE = 75  # `jobs wait --timeout` ran out: try again later (EX_TEMPFAIL)

_LINE_FORMAT = (
    "Prints one job a line: ID, STATE, CREATED, FINISHED (or -) and OUTCOME (a finished "
    "job's run status, a failed one's error code, or -), separated by tabs."
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = commands.add_parser(
        "jobs",
        help="the runs `remote run --async` queued: get, wait for, cancel, list",
        description="`remote run --async ...` queues a run and prints its job's id.",
    )
    actions = jobs.add_subparsers(dest="jobs_command", required=True)

    get = actions.add_parser("get", help="how a job is now", description=_LINE_FORMAT)
    get.add_argument("job_id", metavar="ID", type=job_id)
    get.set_defaults(remote_handler=get_job)

    wait = actions.add_parser(
        "wait",
        help="wait for a job; its output and exit code become ours, as `remote run`",
        description="Waits until the job is final. A finished job's output and exit code "
        "are written as `remote run` writes them; a failed, cancelled or expired one is "
        f"one line on stderr and exit {EXIT_REFUSED}; still queued or running after "
        f"--timeout, exit {EXIT_NOT_DONE}.",
    )
    wait.add_argument("job_id", metavar="ID", type=job_id)
    wait.add_argument(
        "--timeout", type=float, metavar="S", help="give up after S seconds (the job goes on)"
    )
    wait.add_argument(
        "--output-dir",
        metavar="DIR",
        type=Path,
        help="write the files the run collected (`run --async --collect`) under DIR",
    )
    wait.set_defaults(remote_handler=wait_for_job)

    cancel = actions.add_parser("cancel", help="take a queued job off the queue")
    cancel.add_argument("job_id", metavar="ID", type=job_id)
    cancel.set_defaults(remote_handler=cancel_job)

    listing = actions.add_parser("list", help="your jobs, newest first", description=_LINE_FORMAT)
    listing.add_argument("--state", choices=[str(state) for state in JobState])
    listing.set_defaults(remote_handler=list_jobs)

    for parser in (get, wait, cancel, listing):
        add_retry_flag(parser)


def job_id(value: str) -> uuid.UUID:
    """A job's id from the command line: a UUID, or bad usage (exit 2) before anything is sent."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a job id (a UUID): {value!r}") from None


def get_job(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def show(client: Client) -> int:
        print(job_line(client.get_job(args.job_id)))
        return 0

    return with_client(args, show)


def wait_for_job(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def wait(client: Client) -> int:
        try:
            job = client.job(args.job_id).wait(timeout=args.timeout)
        except JobWaitTimeout as exc:
            fail(str(exc))
            return EXIT_NOT_DONE
        if job.result is not None:
            return report(job.result, args.output_dir)
        fail(ending_line(job))
        return EXIT_REFUSED

    return with_client(args, wait)


def cancel_job(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def cancel(client: Client) -> int:
        client.cancel_job(args.job_id)
        return 0

    return with_client(args, cancel)


def list_jobs(args: argparse.Namespace, stdin: BinaryIO) -> int:
    def show(client: Client) -> int:
        for job in client.iter_jobs(state=args.state):
            print(job_line(job))
            sys.stdout.flush()
        return 0

    return with_client(args, show)


def job_line(job: Job) -> str:
    finished = _utc(job.finished_at.isoformat()) if job.finished_at is not None else "-"
    if job.result is not None:
        outcome = str(job.result.status)
    elif job.error is not None:
        outcome = job.error.code
    else:
        outcome = "-"
    return f"{job.id}\t{job.state}\t{_utc(job.created_at.isoformat())}\t{finished}\t{outcome}"


def ending_line(job: Job) -> str:
    """Why a final job has no result: `job ID failed: CODE: detail`, cancelled or expired."""
    if job.error is not None:
        return f"job {job.id} failed: {job.error.code}: {job.error.detail}"
    return f"job {job.id} {job.state}: it has no result"


def _utc(iso: str) -> str:
    return iso.replace("+00:00", "Z")
