"""`wasmwiz remote batch`: run one module on every case of a JSON Lines file, in one request."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from typing import Any, BinaryIO, Literal

from wasmwiz.cli.remote_calls import (
    EXIT_REFUSED,
    MODULE_RULE,
    UsageError,
    add_retry_flag,
    fail,
    module_target,
    refusal_line,
    with_client,
)
from wasmwiz_client import Client, ExecutionResult, InvalidCasesError, WasmWizClientError

EXIT_CASE_FAILED = 3  # the batch ran, and some case did not end `success`

_DESCRIPTION = (
    "CASES is a JSON Lines file ('-' for stdin): one case a line, an object with the API's "
    "keys: `stdin` (text) or `stdin_base64`, `args` (a list of strings), `env` (an object "
    "of strings). Prints one JSON object a line, in case order: `case` (its index) and the "
    "API's result (`status`, `output`, `stderr`, `exit_code`, …). Exits 0 when every case "
    f"ended `success`, {EXIT_CASE_FAILED} when some did not (their lines say how), and as "
    f"`remote run` when the batch is refused or cannot be sent (126, 1, 2). {MODULE_RULE}"
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = commands.add_parser(
        "batch",
        help="run a module on many inputs in one request; one JSON result a line",
        description=_DESCRIPTION,
    )
    batch.add_argument(
        "module",
        nargs="?",
        metavar="MODULE",
        help="the .wasm (or .wat) file, or a stored module's id or name",
    )
    batch.add_argument("cases", metavar="CASES.jsonl", help="the cases, one JSON object a line")
    batch.add_argument("--module", dest="module_ref", metavar="REF", help="a stored module")
    batch.add_argument(
        "--deterministic",
        action="store_true",
        help="virtual clocks and seeded randomness, for every case",
    )
    batch.add_argument("--seed", type=int, help="random_get's seed when deterministic")
    batch.add_argument("--max-fuel", type=int, help="a fuel budget for each case")
    batch.add_argument(
        "--base64",
        action="store_true",
        help="print output and stderr base64-encoded, byte for byte (default: UTF-8 text)",
    )
    add_retry_flag(batch)
    batch.set_defaults(remote_handler=run_batch)


def run_batch(args: argparse.Namespace, stdin: BinaryIO) -> int:
    path, reference = module_target(args.module, args.module_ref)
    if args.guest_args:
        raise UsageError("a batch takes each case's arguments from CASES (`args`), not after --")
    encoding: Literal["base64", "utf-8"] = "base64" if args.base64 else "utf-8"

    def run(client: Client) -> int:
        cases, lines = read_cases(args.cases, stdin)
        try:
            batch = client.run_batch(
                cases,
                wasm=path,
                module=reference,
                deterministic=args.deterministic or None,
                seed=args.seed,
                max_fuel=args.max_fuel,
                encoding=encoding,
            )
        except InvalidCasesError as exc:
            line = lines.get(exc.case) if exc.case is not None else None
            fail(refusal_line(exc, f" (case {exc.case}, line {line})" if line else ""))
            return EXIT_REFUSED
        for index, result in enumerate(batch.results):
            sys.stdout.write(json.dumps(result_object(index, result, encoding)) + "\n")
            sys.stdout.flush()
        return 0 if batch.ok else EXIT_CASE_FAILED

    return with_client(args, run)


def read_cases(path: str, stdin: BinaryIO) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """The cases, and the line each came from (blank lines are skipped)."""
    if path == "-":
        data = stdin.read()
    else:
        with open(path, "rb") as file:
            data = file.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WasmWizClientError(f"{path}: not UTF-8 ({exc})") from None
    cases: list[dict[str, Any]] = []
    lines: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except ValueError as exc:
            raise WasmWizClientError(f"{path}, line {number}: not JSON ({exc})") from None
        if not isinstance(case, dict):
            raise WasmWizClientError(f"{path}, line {number}: a case is a JSON object")
        lines[len(cases)] = number
        cases.append(case)
    return cases, lines


def result_object(index: int, result: ExecutionResult, encoding: str) -> dict[str, Any]:
    """A case's line: its index, then its result as the API answered it."""

    def encoded(data: bytes) -> str:
        if encoding == "base64":
            return base64.b64encode(data).decode("ascii")
        return data.decode("utf-8", errors="replace")

    return {
        "case": index,
        "execution_id": str(result.execution_id),
        "status": str(result.status),
        "output": encoded(result.stdout),
        "error": result.error,
        "stderr": encoded(result.stderr),
        "exit_code": result.exit_code,
        "duration_ms": result.duration_ms,
        "fuel_consumed": result.fuel_consumed,
        "fuel_consumed_is_lower_bound": result.fuel_consumed_is_lower_bound,
        "memory_peak_bytes": result.memory_peak_bytes,
        "output_truncated": result.stdout_truncated,
        "stderr_truncated": result.stderr_truncated,
        "encoding": encoding,
    }
