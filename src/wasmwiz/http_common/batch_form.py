"""Reads a batch (POST /api/v1/execute/batch) from a multipart form: a module and its cases.

The module comes as in the execute form (`wasm` or `module`), as do the options every case
shares (`deterministic`, `seed`, `max_fuel`). `cases` is a JSON array of case objects
(`stdin` or `stdin_base64`, `args`, `env`) and `defaults` one such object, applied to each
case that lacks a key. Every case is checked before anything runs: a bad one is refused
with `invalid_cases` and its index in `case`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from wasmwiz.errors import InvalidRequest, WasmWizError
from wasmwiz.http_common.execution_form import (
    DEFAULT_FILE_LIMITS,
    check_args,
    check_env,
    collect_patterns,
    decode_field,
    execution_form_limits,
    input_entries_async,
    program_name,
    read_limited_form,
    refuse_body_over,
)
from wasmwiz.http_common.multipart import FieldLimit, FormPart
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox.file_input import InputEntry, InputLimits
from wasmwiz.services.batches import BatchCase, BatchOptions, BatchRequest

_FORM_OVERHEAD_BYTES = 64 * 1024
_CASE_KEYS = frozenset({"stdin", "stdin_base64", "args", "env"})
_SHARED_FIELDS = ("module", "deterministic", "seed", "max_fuel")
_FILE_FIELDS = ("files", "archive", "collect")

_CASE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "stdin": {"type": "string", "description": "stdin as text (UTF-8)."},
        "stdin_base64": {"type": "string", "description": "stdin as base64, byte for byte."},
        "args": {"type": "array", "items": {"type": "string"}, "maxItems": 1024},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def batch_form_schema(execution_form: Mapping[str, Any], max_cases: int) -> dict[str, Any]:
    """The batch form's JSON Schema: the execute form's module and shared options, and the
    cases (documented as JSON in a string, as `args` and `env` are)."""
    properties = execution_form["properties"]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["cases"],
        "oneOf": [{"required": ["wasm"]}, {"required": ["module"]}],
        "properties": {
            "wasm": properties["wasm"],
            "module": properties["module"],
            "cases": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_cases,
                    "items": _CASE_SCHEMA,
                },
                "description": f"A JSON array of 1 to MAX_BATCH_CASES ({max_cases}) cases, "
                "as a text field or a file, at most MAX_INPUT_SIZE bytes in all. Each case "
                "has `stdin` (text) or `stdin_base64`, `args` and `env`, all optional.",
                "example": '[{"stdin": "1 2\\n"}, {"stdin": "3 4\\n"}]',
            },
            "defaults": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": _CASE_SCHEMA,
                "description": "A JSON case object, at most MAX_INPUT_SIZE bytes: each key "
                "applies to every case lacking it (a shared stdin is held once).",
                "example": '{"env": {"LANG": "C"}}',
            },
            "deterministic": properties["deterministic"],
            "seed": properties["seed"],
            "max_fuel": properties["max_fuel"],
            "files": _each_case(properties["files"]),
            "archive": _each_case(properties["archive"]),
            "collect": _each_case(properties["collect"]),
        },
    }


def _each_case(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A files field of the execute form, as the batch takes it: for every case."""
    described = dict(schema)
    described["description"] = (
        f"{schema['description']} In a batch, every case gets its own fresh copy of the "
        "directory, and returns its own collected files."
    )
    return described


def _invalid(message: str, case: int | None = None) -> InvalidRequest:
    """`invalid_cases`; about one case, its index is in the message and the `case` member."""
    if case is None:
        return InvalidRequest(message, code=ProblemCode.INVALID_CASES)
    return InvalidRequest(
        f"Case {case}: {message}", code=ProblemCode.INVALID_CASES, extra={"case": case}
    )


_NO_DEFAULTS = BatchCase()


def _case(value: object, index: int | None, defaults: BatchCase = _NO_DEFAULTS) -> BatchCase:
    """A case checked and decoded; what it lacks is taken from `defaults` (decoded once,
    so a shared stdin is one bytes object, however many cases use it). `index` None:
    `defaults` itself, checked as a case."""
    try:
        return _decode_case(value, index, defaults)
    except InvalidRequest as exc:
        if index is None:
            raise _invalid(f"`defaults`: {exc.message}") from None
        raise


def _decode_case(value: object, index: int | None, defaults: BatchCase) -> BatchCase:
    if not isinstance(value, dict):
        raise _invalid("a case is a JSON object.", index)
    unknown = sorted(set(value) - _CASE_KEYS)
    if unknown:
        raise _invalid(f"unknown keys {unknown}; a case takes {sorted(_CASE_KEYS)}.", index)
    if "stdin" in value and "stdin_base64" in value:
        raise _invalid("send `stdin` or `stdin_base64`, not both.", index)
    stdin = defaults.stdin
    try:
        if "stdin_base64" in value:
            if not isinstance(value["stdin_base64"], str):
                raise _invalid(_not_a_string("stdin_base64", value["stdin_base64"]), index)
            stdin = base64.b64decode(value["stdin_base64"], validate=True)
        elif "stdin" in value:
            if not isinstance(value["stdin"], str):
                raise _invalid(_not_a_string("stdin", value["stdin"]), index)
            stdin = value["stdin"].encode()
        args = tuple(check_args(value["args"])) if "args" in value else defaults.args
        env = check_env(value["env"]) if "env" in value else defaults.env
    except (binascii.Error, ValueError):
        raise _invalid("`stdin_base64` is not base64.", index) from None
    except UnicodeEncodeError:
        raise _invalid("`stdin` contains a lone surrogate, which is not text.", index) from None
    except InvalidRequest as exc:
        if exc.code is ProblemCode.INVALID_CASES:
            raise
        raise _invalid(exc.message, index) from None  # a bad `args` or `env` of this case
    return BatchCase(stdin=stdin, args=args, env=env)


def _not_a_string(key: str, value: object) -> str:
    return f"`{key}` must be a string, not {_JSON_TYPES.get(type(value), type(value).__name__)}."


# What json.loads makes of each JSON type, named as JSON names it.
_JSON_TYPES: dict[type, str] = {
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
    list: "an array",
    dict: "an object",
}


def _json(part: FormPart, what: str) -> object:
    try:
        return json.loads(part.data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _invalid(f"{what} is not JSON.") from None


@dataclass(frozen=True, slots=True)
class BatchFormReader:
    """The batch form's reader under the app's limits, built once by `create_app`."""

    max_wasm_size: int
    max_input_size: int
    max_cases: int
    files: InputLimits = DEFAULT_FILE_LIMITS
    limits: Mapping[str, FieldLimit] = field(init=False)
    max_body: int = field(init=False)

    def __post_init__(self) -> None:
        execute = execution_form_limits(self.max_wasm_size, self.max_input_size, self.files)
        limits = {name: execute[name] for name in ("wasm", *_SHARED_FIELDS, *_FILE_FIELDS)}
        limits["cases"] = execute["input"]  # all the cases' stdin, args and env together

        def defaults_too_long(limit: int) -> WasmWizError:
            return _invalid(f"`defaults` is longer than the limit of {limit} bytes.")

        limits["defaults"] = FieldLimit(self.max_input_size, defaults_too_long)
        object.__setattr__(self, "limits", limits)
        # `files` and `archive` exclude each other: the larger counts, once, with the
        # files' part framing.
        payloads = sum(limit.max_bytes for name, limit in limits.items() if name != "archive")
        framing = self.files.max_entries * 512
        object.__setattr__(self, "max_body", payloads + framing + _FORM_OVERHEAD_BYTES)

    def refuse_declared_oversize(self, request: Request) -> None:
        refuse_body_over(request, self.max_body)

    async def read(self, request: Request) -> BatchRequest:
        parts = await read_limited_form(request, self.limits, self.max_body)
        return self.from_parts(parts, await input_entries_async(parts, self.files))

    def from_parts(
        self, parts: Mapping[str, FormPart], files: tuple[InputEntry, ...] | None
    ) -> BatchRequest:
        """The batch from the form's parts and its cases' directory (`input_entries`)."""
        wasm = parts.get("wasm")
        shared = {
            name: decode_field(name, part) for name, part in parts.items() if name in _SHARED_FIELDS
        }
        reference = shared.get("module")
        if wasm is None and reference is None:
            raise InvalidRequest(
                "Send the module in the `wasm` field, or name a stored one in `module`.",
                code=ProblemCode.MISSING_WASM,
            )
        if wasm is not None and reference is not None:
            raise InvalidRequest(
                "Send the module in `wasm` or name a stored one in `module`, not both.",
                code=ProblemCode.WASM_AND_MODULE,
            )
        defaults = _NO_DEFAULTS
        if (defaults_part := parts.get("defaults")) is not None:
            defaults = _case(_json(defaults_part, "`defaults`"), None)
        cases_part = parts.get("cases")
        if cases_part is None:
            raise _invalid("send the cases in `cases`, a JSON array.")
        decoded_cases = _json(cases_part, "`cases`")
        if not isinstance(decoded_cases, list) or not decoded_cases:
            raise _invalid("`cases` is a JSON array of at least one case.")
        if len(decoded_cases) > self.max_cases:
            raise _invalid(
                f"{len(decoded_cases)} cases, over the limit of {self.max_cases} a batch."
            )
        cases = [_case(value, index, defaults) for index, value in enumerate(decoded_cases)]
        module: bytes | memoryview | str
        if wasm is not None:
            module, name = wasm.contents, program_name(wasm.filename)
        else:
            module = str(reference)
            name = program_name(module)
        seed, max_fuel = shared.get("seed"), shared.get("max_fuel")
        options = BatchOptions(
            deterministic=shared.get("deterministic") is True,
            seed=seed if isinstance(seed, int) else 0,
            max_fuel=max_fuel if isinstance(max_fuel, int) else None,
            files=files,
            collect=collect_patterns(parts),
        )
        return BatchRequest(module=module, cases=cases, options=options, program_name=name)
