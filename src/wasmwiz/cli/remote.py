"""`wasmwiz remote run`: run a module on a WasmWiz service, as if it ran here.

The program's stdout and stderr are written byte for byte to ours, and its exit code
becomes ours, so the command drops into shell pipelines. When the program could not
finish on its own, or the service refused the request, one line on stderr says why and
the exit code says which (the codes are documented in docs/api-reference.md). The
module is a file, or one stored on the service (`remote modules`), by id or name. Local
files go into the run's directory and the files it leaves come back (remote_files).
With `--async` the run is queued as a job and its id printed (remote_jobs waits for it).
"""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from wasmwiz.cli import remote_batch, remote_files, remote_jobs, remote_modules
from wasmwiz.cli.remote_calls import (
    EXIT_USAGE,
    MODULE_RULE,
    UsageError,
    add_retry_flag,
    fail,
    module_target,
    with_client,
)
from wasmwiz.cli.remote_report import report
from wasmwiz.cli.stdin import is_piped
from wasmwiz_client import API_KEY_ENV, URL_ENV, Client


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    remote = commands.add_parser("remote", help=f"use a WasmWiz service ({URL_ENV}, {API_KEY_ENV})")
    remote_commands = remote.add_subparsers(dest="remote_command", required=True)
    run = remote_commands.add_parser(
        "run",
        help="run a module on the service; its output and exit code become ours",
        description=f"Reads the service URL from {URL_ENV} and the key from {API_KEY_ENV}. "
        f"Arguments after a bare `--` are passed to the program. {MODULE_RULE}",
    )
    run.add_argument(
        "module",
        nargs="?",
        metavar="MODULE",
        help="the .wasm (or .wat) file, or a stored module's id or name",
    )
    run.add_argument("--module", dest="module_ref", metavar="REF", help="a stored module")
    run.add_argument(
        "--input",
        help="file to send as stdin ('-' for our own stdin; without it, what is piped or "
        "redirected in is sent)",
    )
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
        "--no-cache",
        dest="cache",
        action="store_false",
        default=None,
        help="run it even if the service has the result of this deterministic request cached",
    )
    remote_files.add_arguments(run)
    run.add_argument(
        "--async",
        dest="submit",
        action="store_true",
        help="queue it as a job and print the job's id, nothing else (`remote jobs wait ID` "
        "then prints what the run printed)",
    )
    add_retry_flag(run)
    run.set_defaults(remote_handler=run_remotely)
    remote_modules.add_parser(remote_commands)
    remote_batch.add_parser(remote_commands)
    remote_jobs.add_parser(remote_commands)


def dispatch(args: argparse.Namespace, *, stdin: BinaryIO | None = None) -> int:
    try:
        return int(args.remote_handler(args, stdin or sys.stdin.buffer))
    except UsageError as exc:
        fail(str(exc))
        return EXIT_USAGE


def run_remotely(args: argparse.Namespace, stdin: BinaryIO) -> int:
    path, reference = module_target(args.module, args.module_ref)
    env = dict(_split_env(item) for item in args.env)
    files = remote_files.file_options(args, submitting=args.submit)

    def execute(client: Client) -> int:
        request = {
            "module": reference,
            "input": _read_input(args.input, stdin),
            "args": args.guest_args,
            "env": env,
            "deterministic": args.deterministic or None,
            "seed": args.seed,
            "max_fuel": args.max_fuel,
            "cache": args.cache,
            "files": files.files,
            "archive": files.archive,
            "collect": files.collect,
        }
        try:
            if args.submit:
                print(client.submit(path, **request).id)
                return 0
            result = client.execute(path, **request)
        except ValueError as exc:  # an argument the client will not send (e.g. a file's path)
            raise UsageError(str(exc)) from None
        return report(result, files.output_dir)

    return with_client(args, execute)


def _read_input(path: str | None, stdin: BinaryIO) -> bytes | None:
    """`--input FILE`, `--input -` or, with no option, whatever is piped or redirected in
    (as `wasmwiz run` and the program itself in a shell would read it); nothing: None."""
    if path is None:
        return (stdin.read() or None) if is_piped(stdin) else None
    if path == "-":
        return stdin.read()
    with open(path, "rb") as file:
        return file.read()


def _split_env(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise UsageError(f"--env takes NAME=VALUE, not {item!r}")
    return name, value
