"""Reads an execution request (module, stdin, args, env) from a multipart form."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from wasmwiz.errors import InvalidRequest, PayloadTooLarge, WasmWizError
from wasmwiz.http_common.multipart import FieldLimit, FormPart, read_form
from wasmwiz.http_common.request_limits import declared_content_length
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.executions import ExecutionRequest

MAX_ARGS = 1024
MAX_ARGS_BYTES = 64 * 1024
MAX_ENV_VARS = 1024
MAX_ENV_BYTES = 64 * 1024
# Room for multipart boundaries and part headers on top of the parts themselves.
_FORM_OVERHEAD_BYTES = 64 * 1024
_PROGRAM_NAME = re.compile(r"[^A-Za-z0-9._-]")
MAX_SMALL_FIELD_BYTES = 64  # deterministic, seed, max_fuel: one short value each
_MAX_U64 = 2**64 - 1


def _limit(max_bytes: int, code: ProblemCode, what: str) -> FieldLimit:
    """A payload (the module, stdin): too large is 413, with the payload's own code."""

    def too_large(limit: int) -> WasmWizError:
        return PayloadTooLarge(f"{what} is larger than the limit of {limit} bytes.", code=code)

    return FieldLimit(max_bytes=max_bytes, too_large=too_large)


def _text_limit(max_bytes: int, code: ProblemCode, what: str) -> FieldLimit:
    """A short text field: too long is one more way of being invalid, so it gets the
    field's code and status (400), as any other bad value of that field does."""

    def too_long(limit: int) -> WasmWizError:
        return InvalidRequest(f"{what} is longer than the limit of {limit} bytes.", code=code)

    return FieldLimit(max_bytes=max_bytes, too_large=too_long)


# Built once per pair of limits: they are fixed per app, and each request needs them.
@functools.cache
def execution_form_limits(max_wasm_size: int, max_input_size: int) -> Mapping[str, FieldLimit]:
    return {
        "wasm": _limit(max_wasm_size, ProblemCode.WASM_TOO_LARGE, "The module"),
        "input": _limit(max_input_size, ProblemCode.INPUT_TOO_LARGE, "The input"),
        "args": _text_limit(MAX_ARGS_BYTES, ProblemCode.INVALID_ARGS, "`args`"),
        "env": _text_limit(MAX_ENV_BYTES, ProblemCode.INVALID_ENV, "`env`"),
        "deterministic": _text_limit(
            MAX_SMALL_FIELD_BYTES, ProblemCode.INVALID_DETERMINISTIC, "`deterministic`"
        ),
        "seed": _text_limit(MAX_SMALL_FIELD_BYTES, ProblemCode.INVALID_SEED, "`seed`"),
        "max_fuel": _text_limit(MAX_SMALL_FIELD_BYTES, ProblemCode.INVALID_MAX_FUEL, "`max_fuel`"),
    }


@functools.cache
def max_execution_body(max_wasm_size: int, max_input_size: int) -> int:
    limits = execution_form_limits(max_wasm_size, max_input_size)
    return sum(limit.max_bytes for limit in limits.values()) + _FORM_OVERHEAD_BYTES


def refuse_declared_oversize(request: Request, *, max_wasm_size: int, max_input_size: int) -> None:
    """413 for a body whose Content-Length is over the form's limit, from the head alone:
    before admission, so such a request spends none of the caller's budget."""
    max_body = max_execution_body(max_wasm_size, max_input_size)
    declared = declared_content_length(request.scope)
    if declared is not None and declared > max_body:
        raise PayloadTooLarge(
            f"The request body ({declared} bytes) is larger than the limit of {max_body} bytes.",
            code=ProblemCode.REQUEST_TOO_LARGE,
        )


async def read_execution_form(
    request: Request, *, max_wasm_size: int, max_input_size: int
) -> ExecutionRequest:
    """Read the body (the first read of it: callers admit the request before this)."""
    refuse_declared_oversize(request, max_wasm_size=max_wasm_size, max_input_size=max_input_size)
    limits = execution_form_limits(max_wasm_size, max_input_size)
    max_body = max_execution_body(max_wasm_size, max_input_size)
    parts = await read_form(
        request.stream(),
        request.headers.get("content-type"),
        limits,
        max_body,
        declared_bytes=declared_content_length(request.scope),
    )
    return execution_request_from_parts(parts)


def execution_request_from_parts(parts: Mapping[str, FormPart]) -> ExecutionRequest:
    wasm = parts.get("wasm")
    if wasm is None:
        raise InvalidRequest(
            "Send the module in the `wasm` field (a .wasm binary or .wat text file).",
            code=ProblemCode.MISSING_WASM,
        )
    stdin = parts.get("input")
    return ExecutionRequest(
        wasm=wasm.contents,
        stdin=stdin.contents if stdin is not None else b"",
        args=_parse_args(parts.get("args")),
        env=_parse_env(parts.get("env")),
        program_name=_program_name(wasm.filename),
        deterministic=_parse_deterministic(parts.get("deterministic")),
        seed=_parse_integer(parts.get("seed"), "seed", ProblemCode.INVALID_SEED, minimum=0) or 0,
        max_fuel=_parse_integer(
            parts.get("max_fuel"), "max_fuel", ProblemCode.INVALID_MAX_FUEL, minimum=1
        ),
    )


def _parse_deterministic(part: FormPart | None) -> bool:
    if part is None:
        return False
    value = part.data.strip().lower()
    if value in (b"true", b"1"):
        return True
    if value in (b"false", b"0", b""):
        return False
    raise InvalidRequest(
        "`deterministic` must be true or false.", code=ProblemCode.INVALID_DETERMINISTIC
    )


def _parse_integer(
    part: FormPart | None, name: str, code: ProblemCode, *, minimum: int
) -> int | None:
    """A decimal integer between `minimum` and 2**64 - 1, or None when the field is absent."""
    if part is None or not part.data.strip():
        return None
    text = part.data.strip()
    message = f"`{name}` must be an integer from {minimum} to {_MAX_U64}."
    if not text.isdigit():
        raise InvalidRequest(message, code=code)
    value = int(text)
    if not minimum <= value <= _MAX_U64:
        raise InvalidRequest(message, code=code)
    return value


def _parse_args(part: FormPart | None) -> list[str]:
    if part is None or not part.data.strip():
        return []
    try:
        args = json.loads(part.data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest(
            "`args` must be a JSON array of strings.", code=ProblemCode.INVALID_ARGS
        ) from None
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise InvalidRequest(
            "`args` must be a JSON array of strings.", code=ProblemCode.INVALID_ARGS
        )
    if len(args) > MAX_ARGS:
        raise InvalidRequest(
            f"At most {MAX_ARGS} args are accepted.", code=ProblemCode.INVALID_ARGS
        )
    if any("\0" in arg for arg in args):
        raise InvalidRequest("Args cannot contain NUL characters.", code=ProblemCode.INVALID_ARGS)
    if not all(_encodes(arg) for arg in args):
        raise InvalidRequest(_SURROGATES.format(field="args"), code=ProblemCode.INVALID_ARGS)
    return args


def _parse_env(part: FormPart | None) -> dict[str, str]:
    if part is None or not part.data.strip():
        return {}
    message = "`env` must be a JSON object whose values are strings."
    try:
        env = json.loads(part.data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than Python's recursion limit.
        raise InvalidRequest(message, code=ProblemCode.INVALID_ENV) from None
    if not isinstance(env, dict) or not all(isinstance(value, str) for value in env.values()):
        raise InvalidRequest(message, code=ProblemCode.INVALID_ENV)
    if len(env) > MAX_ENV_VARS:
        raise InvalidRequest(
            f"At most {MAX_ENV_VARS} variables are accepted.", code=ProblemCode.INVALID_ENV
        )
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise InvalidRequest(
                f"Invalid variable {name!r}: names must be non-empty without '=' or NUL, "
                "values without NUL.",
                code=ProblemCode.INVALID_ENV,
            )
        if not (_encodes(name) and _encodes(value)):
            raise InvalidRequest(_SURROGATES.format(field="env"), code=ProblemCode.INVALID_ENV)
    return env


# JSON's \ud800 escapes can spell lone surrogates, which no UTF-8 argv or environ can hold.
_SURROGATES = "`{field}` contains a lone surrogate (\\ud800-\\udfff), which is not text."


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _program_name(filename: str | None) -> str:
    """argv[0]: the uploaded file's base name, reduced to a harmless character set."""
    if not filename:
        return "main.wasm"
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return _PROGRAM_NAME.sub("_", base)[:64] or "main.wasm"


@dataclass(frozen=True, slots=True)
class ExecutionFormReader:
    """The execute form's reader under the app's size limits, built once by `create_app`:
    the routes that take an upload hand it the request, never the limits."""

    max_wasm_size: int
    max_input_size: int

    def refuse_declared_oversize(self, request: Request) -> None:
        refuse_declared_oversize(
            request, max_wasm_size=self.max_wasm_size, max_input_size=self.max_input_size
        )

    async def read(self, request: Request) -> ExecutionRequest:
        return await read_execution_form(
            request, max_wasm_size=self.max_wasm_size, max_input_size=self.max_input_size
        )
