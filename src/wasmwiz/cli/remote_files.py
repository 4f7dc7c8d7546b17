"""The run's files for `wasmwiz remote run`: local files or an archive for its directory,
and the files it left, written under a local directory."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from wasmwiz.cli.remote_calls import UsageError, fail
from wasmwiz_client import ExecutionResult


@dataclass(frozen=True, slots=True)
class FileOptions:
    files: list[tuple[str, Path]] | None  # (path in the run's directory, local file)
    archive: Path | None
    collect: list[str] | None
    output_dir: Path | None


def add_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--file",
        dest="files",
        action="append",
        default=[],
        metavar="[DEST=]SRC",
        help="a local file for the run's directory, under its base name or at DEST "
        "(e.g. data/in.csv=./in.csv; repeatable)",
    )
    run.add_argument(
        "--archive",
        metavar="FILE",
        help="a tar, tar.gz or zip expanded into the run's directory (not with --file)",
    )
    run.add_argument(
        "--collect",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a glob of the files to bring back, e.g. 'out/*' or '**' (repeatable; "
        "with --output-dir)",
    )
    run.add_argument(
        "--output-dir",
        metavar="DIR",
        help="write the collected files under DIR, each at its path there",
    )


def file_options(args: argparse.Namespace, *, submitting: bool = False) -> FileOptions:
    """The files part of the command line, checked before anything is read or sent.

    A job (`submitting`) collects now and is written later, by `remote jobs wait
    --output-dir`: `--collect` goes alone, and `--output-dir` has nothing to write yet.
    """
    if args.files and args.archive is not None:
        raise UsageError("give --file or --archive, not both")
    if submitting and args.output_dir is not None:
        raise UsageError("with --async, --output-dir goes to `remote jobs wait ID`")
    if args.collect and args.output_dir is None and not submitting:
        raise UsageError("--collect needs --output-dir DIR: where to write what comes back")
    if args.output_dir is not None and not args.collect:
        raise UsageError("--output-dir needs --collect PATTERN: which files to bring back")
    return FileOptions(
        files=[_file_argument(item) for item in args.files] or None,
        archive=Path(args.archive) if args.archive is not None else None,
        collect=list(args.collect) or None,
        output_dir=Path(args.output_dir) if args.output_dir is not None else None,
    )


def _file_argument(item: str) -> tuple[str, Path]:
    """`SRC` goes under its base name; `DEST=SRC` at DEST (the first `=` splits)."""
    destination, sep, source = item.partition("=")
    if not sep:
        source = item
        destination = os.path.basename(os.path.normpath(item))
    if not destination or not source:
        raise UsageError(f"--file takes SRC or DEST=SRC, not {item!r}")
    return destination, Path(source)


def save_collected(result: ExecutionResult, directory: Path) -> None:
    """Write the collected files under `directory` and say on stderr what was written, and
    what could not be (over the service's cap, their content was not sent)."""
    sent = [file for file in result.files if file.content is not None]
    for file, path in zip(sent, result.write_files(directory), strict=True):
        fail(f"wrote {path} ({file.size} bytes)")
    for file in result.files:
        if file.content is None:
            fail(
                f"not written: {file.path} ({file.size} bytes): past the service's cap on "
                "collected files"
            )
    if not result.files:
        fail("no file matched --collect")
