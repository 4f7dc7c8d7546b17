"""`wasmwiz remote run`: run a module on a WasmWiz service, as if it ran here.

The program's stdout and stderr are written byte for byte to ours, and its exit code
becomes ours, so the command drops into shell pipelines. When the program could not
finish on its own, or the service refused the request, one line on stderr says why and
the exit code says which (the codes are documented in docs/api-reference.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import BinaryIO

from wasmwiz_client import (
    API_KEY_ENV,
    URL_ENV,
    Client,
    ExecutionResult,
    Outcome,
    ProblemError,
    WasmWizClientError,
)

EXIT_CLIENT_ERROR = 1  # no URL, an unreadable file, the service unreachable
EXIT_TIMEOUT = 124  # the run hit the time limit (as timeout(1) does)
EXIT_STOPPED = 125  # trap, memory, stack, output or fuel limit
EXIT_REFUSED = 126  # the service refused the request (problem details)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    remote = commands.add_parser("remote", help=f"use a WasmWiz service ({URL_ENV}, {API_KEY_ENV})")
    remote_commands = remote.add_subparsers(dest="remote_command", required=True)
    run = remote_commands.add_parser(
        "run",
        help="run a module on the service; its output and exit code become ours",
        description=f"Reads the service URL from {URL_ENV} and the key from {API_KEY_ENV}. "
        "Arguments after a bare `--` are passed to the program.",
    )
    run.add_argument("module", help="the .wasm (or .wat) file")
    run.add_argument("--input", help="file to send as stdin ('-' for our own stdin)")
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the program (repeatable)",
    )
    run.add_argument(
        "--deterministic",
        action="store_true",
        help="virtual clocks and seeded randomness: the same request prints the same bytes",
    )
    run.add_argument("--seed", type=int, help="random_get's seed when deterministic")
    run.add_argument("--max-fuel", type=int, help="a fuel budget for the run")
    run.add_argument(
        "--retry", action="store_true", help="wait out 429/503 refusals as Retry-After says"
    )


def run(args: argparse.Namespace, *, stdin: BinaryIO | None = None) -> int:
    try:
        env = dict(_split_env(item) for item in args.env)
        if not os.environ.get(API_KEY_ENV):
            raise WasmWizClientError(
                f"No API key: set {API_KEY_ENV} (the web page /api-keys or "
                "`wasmwiz keys create EMAIL` makes one)"
            )
        stdin_bytes = _read_input(args.input, stdin or sys.stdin.buffer)
        with Client.from_env(retry=args.retry) as client:
            result = client.execute(
                args.module,
                input=stdin_bytes,
                args=args.guest_args,
                env=env,
                deterministic=args.deterministic or None,
                seed=args.seed,
                max_fuel=args.max_fuel,
            )
    except ProblemError as exc:
        request = f" (request {exc.request_id})" if exc.request_id else ""
        _fail(f"{exc.code}: {exc.detail}{request}")
        return EXIT_REFUSED
    except (WasmWizClientError, OSError) as exc:
        _fail(str(exc))
        return EXIT_CLIENT_ERROR
    return report(result)


def report(result: ExecutionResult) -> int:
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.flush()
    if result.finished:
        return result.exit_code or 0
    _fail(outcome_line(result.status, result.error))
    return EXIT_TIMEOUT if result.status == Outcome.TIMEOUT else EXIT_STOPPED


def outcome_line(outcome: str, error: str | None) -> str:
    """`trap: unreachable instruction executed`, not `trap: trap: …`: the error may already
    start with the outcome's name."""
    if not error:
        return outcome
    return error if error.startswith(f"{outcome}: ") else f"{outcome}: {error}"


def _read_input(path: str | None, stdin: BinaryIO) -> bytes | None:
    if path is None:
        return None
    if path == "-":
        return stdin.read()
    with open(path, "rb") as file:
        return file.read()


def _split_env(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise WasmWizClientError(f"--env takes NAME=VALUE, not {item!r}")
    return name, value


def _fail(message: str) -> None:
    print(f"wasmwiz: {message}", file=sys.stderr, flush=True)
