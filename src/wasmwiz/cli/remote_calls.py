"""How the `wasmwiz remote` commands call the service: the client from the environment, a
refusal as one line and an exit code, and which argument names a stored module."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable

from wasmwiz_client import API_KEY_ENV, Client, ProblemError, WasmWizClientError

EXIT_CLIENT_ERROR = 1  # no URL, an unreadable file, the service unreachable
EXIT_USAGE = 2  # as argparse exits on a bad command line
EXIT_TIMEOUT = 124  # the run hit the time limit (as timeout(1) does)
EXIT_STOPPED = 125  # trap, memory, stack, output or fuel limit
EXIT_REFUSED = 126  # the service refused the request (problem details)

# The service's own rule for a module name, with a public runtime's `@version` (`lua@5.4.8`):
# checked here only to tell a reference from a file's path, never to refuse one; the
# service judges.
_MODULE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}(@[0-9A-Za-z][0-9A-Za-z._+-]{0,31})?")
_FILE_SUFFIXES = (".wasm", ".wat")

MODULE_RULE = (
    "MODULE is a file when one exists at that path. Otherwise it is a stored module when it "
    "starts with `sha256:` or is a module name (a-z 0-9 . _ -, starting with a letter or "
    "digit; a public runtime's may end in @VERSION) not ending in .wasm or .wat; anything "
    "else is taken as a file's path, so a mistyped path says so. `--module REF` always "
    "means a stored module."
)


class UsageError(Exception):
    """A command line that parses but asks for something impossible: exit 2, as argparse
    does, before anything is read or sent."""


def with_client(args: argparse.Namespace, action: Callable[[Client], int]) -> int:
    """Run `action` with a client for WASMWIZ_URL and WASMWIZ_API_KEY; what goes wrong is
    one line on stderr and an exit code, never a traceback."""
    try:
        if not os.environ.get(API_KEY_ENV):
            raise WasmWizClientError(
                f"No API key: set {API_KEY_ENV} (the web page /api-keys or "
                "`wasmwiz keys create EMAIL` makes one)"
            )
        with Client.from_env(retry=getattr(args, "retry", False)) as client:
            return action(client)
    except ProblemError as exc:
        fail(refusal_line(exc))
        return EXIT_REFUSED
    except (WasmWizClientError, OSError) as exc:
        fail(str(exc))
        return EXIT_CLIENT_ERROR


def refusal_line(error: ProblemError, where: str = "") -> str:
    """`CODE: detail (request ID)`, with `where` (e.g. which case) before the request."""
    request = f" (request {error.request_id})" if error.request_id else ""
    return f"{error.code}: {error.detail}{where}{request}"


def module_target(positional: str | None, reference: str | None) -> tuple[str | None, str | None]:
    """The module a command runs, as (path, reference): exactly one is set (MODULE_RULE)."""
    if positional is not None and reference is not None:
        raise UsageError("give MODULE or --module REF, not both")
    if reference is not None:
        return None, reference
    if positional is None:
        raise UsageError("no module: give a MODULE file, or --module REF")
    if looks_like_reference(positional) and not os.path.exists(positional):
        return None, positional
    return positional, None


def looks_like_reference(value: str) -> bool:
    if value.startswith("sha256:"):
        return True
    return _MODULE_NAME.fullmatch(value) is not None and not value.endswith(_FILE_SUFFIXES)


def add_retry_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--retry", action="store_true", help="wait out 429/503 refusals as Retry-After says"
    )


def fail(message: str) -> None:
    print(f"wasmwiz: {message}", file=sys.stderr, flush=True)
