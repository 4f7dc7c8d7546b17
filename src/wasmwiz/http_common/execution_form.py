"""Reads an execution request (module, stdin, args, env) from a multipart form."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from pydantic.fields import FieldInfo
from starlette.requests import Request

from wasmwiz.errors import InvalidRequest, PayloadTooLarge, WasmWizError
from wasmwiz.http_common.execution_form_model import (
    MAX_ARGS,
    MAX_ENV_VARS,
    MODULE_REFERENCE,
    ExecutionForm,
    field_rules,
    integer_bounds,
)
from wasmwiz.http_common.multipart import FieldLimit, FormPart, read_form
from wasmwiz.http_common.request_limits import declared_content_length
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox.file_input import (
    FilesRefused,
    InputEntry,
    InputLimits,
    from_archive,
    from_parts,
)
from wasmwiz.sandbox.file_output import InvalidPattern, check_patterns
from wasmwiz.services.executions import ExecutionRequest

# Room for multipart boundaries and part headers on top of the parts themselves.
_FORM_OVERHEAD_BYTES = 64 * 1024
_PROGRAM_NAME = re.compile(r"[^A-Za-z0-9._-]")
_FIELDS = ExecutionForm.model_fields


def _limit(max_bytes: int, code: ProblemCode, what: str) -> FieldLimit:
    """A payload (the module, stdin): too large is 413, with the payload's own code."""

    def too_large(limit: int) -> WasmWizError:
        return PayloadTooLarge(f"{what} is larger than the limit of {limit} bytes.", code=code)

    return FieldLimit(max_bytes=max_bytes, too_large=too_large)


def text_limit(max_bytes: int, code: ProblemCode, what: str) -> FieldLimit:
    """A short text field: too long is one more way of being invalid, so it gets the
    field's code and status (400), as any other bad value of that field does."""

    def too_long(limit: int) -> WasmWizError:
        return InvalidRequest(f"{what} is longer than the limit of {limit} bytes.", code=code)

    return FieldLimit(max_bytes=max_bytes, too_large=too_long)


# The input files' limits when a caller gives none (the settings' defaults).
DEFAULT_FILE_LIMITS = InputLimits(
    max_bytes=16 * 1024 * 1024, max_entries=1000, max_path_length=1024, max_path_depth=32
)
# Multipart framing per `files` part: its boundary and headers, filename included.
_FILE_PART_OVERHEAD_BYTES = 512


def _too_many_files(limit: int) -> WasmWizError:
    return InvalidRequest(
        f"At most {limit} input files are accepted.", code=ProblemCode.TOO_MANY_FILES
    )


# Built once per set of limits: they are fixed per app, and each request needs them.
@functools.cache
def execution_form_limits(
    max_wasm_size: int, max_input_size: int, files: InputLimits = DEFAULT_FILE_LIMITS
) -> Mapping[str, FieldLimit]:
    """A limit for each field of `ExecutionForm`, and none for any other name."""
    payload_sizes = {
        "wasm": max_wasm_size,
        "input": max_input_size,
        "files": files.max_bytes,
        "archive": files.max_bytes,
    }
    limits = {}
    for name, field in _FIELDS.items():
        rules = field_rules(field)
        if rules.max_bytes is None:
            limits[name] = _limit(payload_sizes[name], rules.code, rules.what)
        else:
            limits[name] = text_limit(rules.max_bytes, rules.code, rules.what)
    limits["files"] = replace(
        limits["files"], repeatable=True, max_count=files.max_entries, too_many=_too_many_files
    )
    return limits


@functools.cache
def max_execution_body(
    max_wasm_size: int, max_input_size: int, files: InputLimits = DEFAULT_FILE_LIMITS
) -> int:
    limits = execution_form_limits(max_wasm_size, max_input_size, files)
    # `files` and `archive` exclude each other: the larger of them counts, once.
    payloads = sum(limit.max_bytes for name, limit in limits.items() if name != "archive")
    framing = files.max_entries * _FILE_PART_OVERHEAD_BYTES
    return payloads + framing + _FORM_OVERHEAD_BYTES


def refuse_body_over(request: Request, max_body: int) -> None:
    """413 for a body whose Content-Length is over a form's limit, from the head alone:
    before admission, so such a request spends none of the caller's budget. Every upload
    form (execute, batch, module) checks its own limit with it."""
    declared = declared_content_length(request.scope)
    if declared is not None and declared > max_body:
        raise PayloadTooLarge(
            f"The request body ({declared} bytes) is larger than the limit of {max_body} bytes.",
            code=ProblemCode.REQUEST_TOO_LARGE,
        )


async def read_limited_form(
    request: Request, limits: Mapping[str, FieldLimit], max_body: int
) -> dict[str, FormPart]:
    """The request's multipart form, each field within its limit (the first read of the
    body: callers admit the request before this)."""
    return await read_form(
        request.stream(),
        request.headers.get("content-type"),
        limits,
        max_body,
        declared_bytes=declared_content_length(request.scope),
    )


def refuse_declared_oversize(
    request: Request,
    *,
    max_wasm_size: int,
    max_input_size: int,
    files: InputLimits = DEFAULT_FILE_LIMITS,
) -> None:
    refuse_body_over(request, max_execution_body(max_wasm_size, max_input_size, files))


async def read_execution_form(
    request: Request,
    *,
    max_wasm_size: int,
    max_input_size: int,
    files: InputLimits = DEFAULT_FILE_LIMITS,
) -> ExecutionRequest:
    """Read the body (the first read of it: callers admit the request before this)."""
    max_body = max_execution_body(max_wasm_size, max_input_size, files)
    refuse_body_over(request, max_body)
    limits = execution_form_limits(max_wasm_size, max_input_size, files)
    parts = await read_limited_form(request, limits, max_body)
    form = execution_form_from_parts(parts)
    return execution_request_from_parts(parts, form, await input_entries_async(parts, files))


def input_entries(
    parts: Mapping[str, FormPart], limits: InputLimits
) -> tuple[InputEntry, ...] | None:
    """The run's directory from the `files` parts or the `archive` (an empty one for
    `collect` alone), or None when the form asks for no directory. The execute and batch
    forms share it."""
    archive = parts.get("archive")
    if archive is not None and archive.size == 0:
        archive = None  # an empty field is no archive (forms such as Swagger UI's send one)
    given = _given_files(parts.get("files"))
    if archive is not None and given:
        raise InvalidRequest(
            "Send the input files as `files` parts or as one `archive`, not both.",
            code=ProblemCode.FILES_AND_ARCHIVE,
        )
    try:
        if archive is not None:
            return tuple(from_archive(bytes(archive.contents), limits))
        if given:
            pairs = [(part.filename or "", part.data) for part in given]
            return tuple(from_parts(pairs, limits))
    except FilesRefused as refusal:
        status = PayloadTooLarge if refusal.code.status == 413 else InvalidRequest
        raise status(refusal.message, code=refusal.code) from None
    return () if "collect" in parts else None


async def input_entries_async(
    parts: Mapping[str, FormPart], limits: InputLimits
) -> tuple[InputEntry, ...] | None:
    """`input_entries`, off the event loop when there is an archive to expand."""
    archive = parts.get("archive")
    if archive is not None and archive.size:
        return await asyncio.to_thread(input_entries, parts, limits)
    return input_entries(parts, limits)


def collect_patterns(parts: Mapping[str, FormPart]) -> tuple[str, ...]:
    part = parts.get("collect")
    return tuple(_parse_collect(part, "collect")) if part is not None else ()


def execution_request_from_parts(
    parts: Mapping[str, FormPart],
    form: ExecutionForm,
    entries: tuple[InputEntry, ...] | None,
) -> ExecutionRequest:
    """The request from the form's parts, `form` decoded from them, and the run's
    directory (`input_entries`: None for none)."""
    wasm = parts.get("wasm")
    return ExecutionRequest(
        files=entries,
        collect=tuple(form.collect),
        wasm=form.wasm,
        module=form.module,
        stdin=form.input,
        args=form.args,
        env=form.env,
        program_name=_program_name(wasm.filename if wasm is not None else form.module),
        deterministic=form.deterministic,
        seed=form.seed,
        max_fuel=form.max_fuel,
        cache=form.cache,
    )


def execution_form_from_parts(parts: Mapping[str, FormPart]) -> ExecutionForm:
    """Fill the form from the parts that arrived (only its own fields: `read_form` refused
    any other), each decoded by its field's rules."""
    values: dict[str, Any] = {}
    for name, field in _FIELDS.items():
        part = parts.get(name)
        if part is not None:
            values[name] = _DECODERS[name](part, name)
        elif (missing := field_rules(field).missing) is not None:
            code, detail = missing
            raise InvalidRequest(detail, code=code)
        else:
            values[name] = _DEFAULTS[name]()
    if values["wasm"] is None and values["module"] is None:
        raise InvalidRequest(
            "Send the module in the `wasm` field (a .wasm binary or .wat text file), or name "
            "a stored one in `module`.",
            code=ProblemCode.MISSING_WASM,
        )
    if values["wasm"] is not None and values["module"] is not None:
        raise InvalidRequest(
            "Send the module in `wasm` or name a stored one in `module`, not both.",
            code=ProblemCode.WASM_AND_MODULE,
        )
    # Each decoder has checked its value against the field's declaration: no second pass.
    # Every field is given: pydantic's own defaulting inspects a default factory's
    # signature on every call (docs/performance.md).
    return ExecutionForm.model_construct(**values)


def _default(field: FieldInfo) -> Callable[[], Any]:
    if field.default_factory is None:
        return functools.partial(_value, field.default)
    return cast(Callable[[], Any], field.default_factory)


def _value(value: Any) -> Any:
    return value


_DEFAULTS = {name: _default(field) for name, field in _FIELDS.items() if not field.is_required()}


def _payload(part: FormPart, name: str) -> bytes | memoryview:
    return part.contents


def _optional_payload(part: FormPart, name: str) -> bytes | memoryview | None:
    """A file field that may be left empty: empty, it is not there."""
    return part.contents if part.size else None


def _parse_module_reference(part: FormPart, name: str) -> str | None:
    """A stored module's or runtime's reference; an empty field is no reference (as other
    optional fields' are their default: forms such as Swagger UI's send every field)."""
    try:
        text = bytes(part.data).decode().strip()
    except UnicodeDecodeError:
        text = "\0"
    if not text:
        return None
    if not MODULE_REFERENCE.fullmatch(text):
        raise InvalidRequest(
            "`module` must be a stored module's id (`sha256:` and 64 lowercase hex digits), "
            "one of your names for it (1 to 64 of a-z 0-9 . _ -), or a public runtime's name "
            "(`lua`, `lua@5.4.8`).",
            code=ProblemCode.INVALID_MODULE_REFERENCE,
        )
    return text


# Read from the model once: each request needs them.
_BOOLEANS = {
    name: (bool(field.get_default()), field_rules(field).code)
    for name, field in _FIELDS.items()
    if name in ("deterministic", "cache")
}


def _parse_boolean(part: FormPart, name: str) -> bool:
    """true or false (1 or 0); an empty field is the default."""
    value = part.data.strip().lower()
    default, code = _BOOLEANS[name]
    if value in (b"true", b"1"):
        return True
    if value in (b"false", b"0"):
        return False
    if value == b"":
        return default
    raise InvalidRequest(f"`{name}` must be true or false.", code=code)


@dataclass(frozen=True, slots=True)
class _IntegerField:
    minimum: int
    maximum: int
    default: int | None
    code: ProblemCode


# Read from the model once: each request needs them.
_INTEGERS = {
    name: _IntegerField(*integer_bounds(field), field.get_default(), field_rules(field).code)
    for name, field in _FIELDS.items()
    if name in ("seed", "max_fuel")
}


def _parse_integer(part: FormPart, name: str) -> int | None:
    """A decimal integer within the field's declared bounds; an empty field is the default."""
    text = part.data.strip()
    field = _INTEGERS[name]
    if not text:
        return field.default
    minimum, maximum, code = field.minimum, field.maximum, field.code
    message = f"`{name}` must be an integer from {minimum} to {maximum}."
    if not text.isdigit():
        raise InvalidRequest(message, code=code)
    value = int(text)
    if not minimum <= value <= maximum:
        raise InvalidRequest(message, code=code)
    return value


def _parse_args(part: FormPart, name: str) -> list[str]:
    if not part.data.strip():
        return []
    try:
        args = json.loads(part.data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest(
            "`args` must be a JSON array of strings.", code=ProblemCode.INVALID_ARGS
        ) from None
    return check_args(args)


def check_args(args: object) -> list[str]:
    """`args` as decoded from JSON: a list of at most MAX_ARGS strings a guest can take."""
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


_ENV_MESSAGE = "`env` must be a JSON object whose values are strings."


def _parse_env(part: FormPart, name: str) -> dict[str, str]:
    if not part.data.strip():
        return {}
    try:
        env = json.loads(part.data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than Python's recursion limit.
        raise InvalidRequest(_ENV_MESSAGE, code=ProblemCode.INVALID_ENV) from None
    return check_env(env)


def check_env(env: object) -> dict[str, str]:
    """`env` as decoded from JSON: at most MAX_ENV_VARS variables a guest's environ holds."""
    message = _ENV_MESSAGE
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


def _file_parts(part: FormPart, name: str) -> list[bytes | memoryview]:
    """Every `files` part's bytes, in order (`input_entries` reads their filenames)."""
    return [each.contents for each in _given_files(part)]


def _given_files(first: FormPart | None) -> list[FormPart]:
    """The `files` parts (a repeatable field's first part holds the others), but empty
    ones without a filename: a form's file field left empty (Swagger UI sends one)."""
    if first is None:
        return []
    return [part for part in [first, *first.more] if part.size or part.filename]


_COLLECT_MESSAGE = (
    "`collect` must be a JSON array of glob patterns relative to the run's directory, "
    'e.g. ["out/*.txt"] or ["**"].'
)


def _parse_collect(part: FormPart, name: str) -> list[str]:
    if not part.data.strip():
        return []
    try:
        patterns = json.loads(part.data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest(_COLLECT_MESSAGE, code=ProblemCode.INVALID_COLLECT) from None
    if not isinstance(patterns, list) or not all(isinstance(item, str) for item in patterns):
        raise InvalidRequest(_COLLECT_MESSAGE, code=ProblemCode.INVALID_COLLECT)
    try:
        check_patterns(patterns)
    except InvalidPattern as exc:
        raise InvalidRequest(
            f"{_COLLECT_MESSAGE} {exc}.", code=ProblemCode.INVALID_COLLECT
        ) from None
    return patterns


_DECODERS: dict[str, Callable[[FormPart, str], object]] = {
    "wasm": _payload,
    "module": _parse_module_reference,
    "input": _payload,
    "args": _parse_args,
    "env": _parse_env,
    "deterministic": _parse_boolean,
    "seed": _parse_integer,
    "max_fuel": _parse_integer,
    "files": _file_parts,
    "archive": _optional_payload,
    "collect": _parse_collect,
    "cache": _parse_boolean,
}
if _DECODERS.keys() != _FIELDS.keys():
    raise TypeError("every field of ExecutionForm needs a decoder, and only those")


def decode_field(name: str, part: FormPart) -> object:
    """One field of the execute form decoded by its rules (the batch form shares them)."""
    return _DECODERS[name](part, name)


def program_name(filename: str | None) -> str:
    return _program_name(filename)


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
    files: InputLimits = DEFAULT_FILE_LIMITS

    def refuse_declared_oversize(self, request: Request) -> None:
        refuse_declared_oversize(
            request,
            max_wasm_size=self.max_wasm_size,
            max_input_size=self.max_input_size,
            files=self.files,
        )

    async def read(self, request: Request) -> ExecutionRequest:
        return await read_execution_form(
            request,
            max_wasm_size=self.max_wasm_size,
            max_input_size=self.max_input_size,
            files=self.files,
        )
