"""A run's result as ours: its streams byte for byte, its collected files, its exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from wasmwiz.cli import remote_files
from wasmwiz.cli.remote_calls import EXIT_STOPPED, EXIT_TIMEOUT, fail
from wasmwiz_client import ExecutionResult, Outcome


def report(result: ExecutionResult, output_dir: Path | None = None) -> int:
    """The program's streams as ours, its collected files written (when asked), and the
    exit code; a run the sandbox stopped gets one line saying how, last."""
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.flush()
    if output_dir is not None:
        remote_files.save_collected(result, output_dir)
    if result.finished:
        return result.exit_code or 0
    fail(outcome_line(result.status, result.error))
    return EXIT_TIMEOUT if result.status == Outcome.TIMEOUT else EXIT_STOPPED


def outcome_line(outcome: str, error: str | None) -> str:
    """`trap: unreachable instruction executed`, not `trap: trap: …`: the error may already
    start with the outcome's name."""
    if not error:
        return outcome
    return error if error.startswith(f"{outcome}: ") else f"{outcome}: {error}"
