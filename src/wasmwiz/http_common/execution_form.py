"""Reads an execution request (module, stdin, args, env) from a multipart form."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping

from starlette.requests import Request

from wasmwiz.errors import InvalidRequest, PayloadTooLarge, WasmWizError
from wasmwiz.http_common.multipart import FieldLimit, FormPart, read_form
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


def _limit(max_bytes: int, code: str, what: str) -> FieldLimit:
    def too_large(limit: int) -> WasmWizError:
        return PayloadTooLarge(f"{what} is larger than the limit of {limit} bytes.", code=code)

    return FieldLimit(max_bytes=max_bytes, too_large=too_large)


# Built once per pair of limits: they are fixed per app, and each request needs them.
@functools.cache
def execution_form_limits(max_wasm_size: int, max_input_size: int) -> Mapping[str, FieldLimit]:
    return {
        "wasm": _limit(max_wasm_size, "wasm_too_large", "The module"),
        "input": _limit(max_input_size, "input_too_large", "The input"),
        "args": _limit(MAX_ARGS_BYTES, "invalid_args", "The args field"),
        "env": _limit(MAX_ENV_BYTES, "invalid_env", "The env field"),
        "deterministic": _limit(MAX_SMALL_FIELD_BYTES, "invalid_deterministic", "deterministic"),
        "seed": _limit(MAX_SMALL_FIELD_BYTES, "invalid_seed", "seed"),
        "max_fuel": _limit(MAX_SMALL_FIELD_BYTES, "invalid_max_fuel", "max_fuel"),
    }


async def read_execution_form(
    request: Request, *, max_wasm_size: int, max_input_size: int
) -> ExecutionRequest:
    limits = execution_form_limits(max_wasm_size, max_input_size)
    max_body = sum(limit.max_bytes for limit in limits.values()) + _FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise PayloadTooLarge(
            f"The request body ({declared} bytes) is larger than the limit of {max_body} bytes.",
            code="request_too_large",
        )
    parts = await read_form(request.stream(), request.headers.get("content-type"), limits, max_body)
    return execution_request_from_parts(parts)


def execution_request_from_parts(parts: Mapping[str, FormPart]) -> ExecutionRequest:
    wasm = parts.get("wasm")
    if wasm is None:
        raise InvalidRequest(
            "Send the module in the `wasm` field (a .wasm binary or .wat text file).",
            code="missing_wasm",
        )
    stdin = parts.get("input")
    return ExecutionRequest(
        wasm=wasm.data,
        stdin=stdin.data if stdin is not None else b"",
        args=_parse_args(parts.get("args")),
        env=_parse_env(parts.get("env")),
        program_name=_program_name(wasm.filename),
        deterministic=_parse_deterministic(parts.get("deterministic")),
        seed=_parse_integer(parts.get("seed"), "seed", minimum=0) or 0,
        max_fuel=_parse_integer(parts.get("max_fuel"), "max_fuel", minimum=1),
    )


def _parse_deterministic(part: FormPart | None) -> bool:
    if part is None:
        return False
    value = part.data.strip().lower()
    if value in (b"true", b"1"):
        return True
    if value in (b"false", b"0", b""):
        return False
    raise InvalidRequest("`deterministic` must be true or false.", code="invalid_deterministic")


def _parse_integer(part: FormPart | None, name: str, *, minimum: int) -> int | None:
    """A decimal integer between `minimum` and 2**64 - 1, or None when the field is absent."""
    if part is None or not part.data.strip():
        return None
    text = part.data.strip()
    message = f"`{name}` must be an integer from {minimum} to {_MAX_U64}."
    if not text.isdigit():
        raise InvalidRequest(message, code=f"invalid_{name}")
    value = int(text)
    if not minimum <= value <= _MAX_U64:
        raise InvalidRequest(message, code=f"invalid_{name}")
    return value


def _parse_args(part: FormPart | None) -> list[str]:
    if part is None or not part.data.strip():
        return []
    try:
        args = json.loads(part.data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(
            "`args` must be a JSON array of strings.", code="invalid_args"
        ) from None
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise InvalidRequest("`args` must be a JSON array of strings.", code="invalid_args")
    if len(args) > MAX_ARGS:
        raise InvalidRequest(f"At most {MAX_ARGS} args are accepted.", code="invalid_args")
    if any("\0" in arg for arg in args):
        raise InvalidRequest("Args cannot contain NUL characters.", code="invalid_args")
    return args


def _parse_env(part: FormPart | None) -> dict[str, str]:
    if part is None or not part.data.strip():
        return {}
    message = "`env` must be a JSON object whose values are strings."
    try:
        env = json.loads(part.data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(message, code="invalid_env") from None
    if not isinstance(env, dict) or not all(isinstance(value, str) for value in env.values()):
        raise InvalidRequest(message, code="invalid_env")
    if len(env) > MAX_ENV_VARS:
        raise InvalidRequest(f"At most {MAX_ENV_VARS} variables are accepted.", code="invalid_env")
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise InvalidRequest(
                f"Invalid variable {name!r}: names must be non-empty without '=' or NUL, "
                "values without NUL.",
                code="invalid_env",
            )
    return env


def _program_name(filename: str | None) -> str:
    """argv[0]: the uploaded file's base name, reduced to a harmless character set."""
    if not filename:
        return "main.wasm"
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return _PROGRAM_NAME.sub("_", base)[:64] or "main.wasm"
