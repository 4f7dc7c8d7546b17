"""The execute form, declared once: the reader fills it, and the OpenAPI document is its schema.

Each field says its wire type, bounds, default, description and example (pydantic), and
how the streaming reader bounds it (`FieldRules`: the problem code of a bad or oversized
value, the size of a short text field). The reader (`http_common.execution_form`) accepts
exactly these fields and takes its integer bounds from here, so what is documented is
what is parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, Json, WithJsonSchema
from pydantic.fields import FieldInfo

from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.stored_modules import MODULE_ID, MODULE_NAME, RUNTIME_VERSION

MAX_ARGS = 1024
MAX_ARGS_BYTES = 64 * 1024
MAX_ENV_VARS = 1024
MAX_ENV_BYTES = 64 * 1024
MAX_COLLECT_PATTERNS = 64
MAX_COLLECT_BYTES = 64 * 1024
MAX_SMALL_FIELD_BYTES = 64  # deterministic, seed, max_fuel, cache: one short value each
MAX_U64 = 2**64 - 1
MAX_MODULE_REFERENCE_BYTES = 97  # a runtime's name@version; "sha256:" and 64 digits is 71
MODULE_REFERENCE_PATTERN = (
    f"^({MODULE_ID.pattern}|{MODULE_NAME.pattern}(@{RUNTIME_VERSION.pattern})?)$"
)
MODULE_REFERENCE = re.compile(MODULE_REFERENCE_PATTERN)


@dataclass(frozen=True, slots=True)
class FieldRules:
    """How the reader bounds a field.

    `code` is the problem code of a value that is not valid, too long (a text field: 400)
    or too large (a payload: 413). A payload has no `max_bytes` here: its limit is a
    setting (MAX_WASM_SIZE, MAX_INPUT_SIZE). `missing` is the refusal of a required field
    left out.
    """

    code: ProblemCode
    what: str
    max_bytes: int | None = None
    missing: tuple[ProblemCode, str] | None = None


# A file part, kept as it arrived: a view of the form's mapping or its one piece, never a copy.
Payload = Annotated[bytes | memoryview, WithJsonSchema({"type": "string", "format": "binary"})]


def _absent_not_null(schema: dict[str, Any]) -> None:
    """A form has no null: an optional field is one that may be left out."""
    (value,) = [branch for branch in schema.pop("anyOf") if branch.get("type") != "null"]
    schema.pop("default", None)
    schema.update(value)


def _absent_is_unbounded(schema: dict[str, Any]) -> None:
    """A field left out is how a caller asks for no budget."""
    _absent_not_null(schema)
    # `example`, not `examples`: what Swagger UI's "Try it out" pre-fills a form field with.
    schema["example"] = 1_000_000_000_000


def _absent_is_zero(schema: dict[str, Any]) -> None:
    """The seed: left out, the run uses 0, but only a seed that was sent makes a
    deterministic run cacheable, so "not sent" is kept apart from 0."""
    _absent_not_null(schema)
    schema["example"] = 0


def _absent_reference(schema: dict[str, Any]) -> None:
    """No reference unless given: Swagger UI's "Try it out" sends the example (else a
    sample made from the pattern), and an empty field is no reference."""
    _absent_not_null(schema)
    schema["example"] = ""


def _one_module(schema: dict[str, Any]) -> None:
    """The module comes in `wasm` or is named in `module`: one of them, never both."""
    schema["oneOf"] = [{"required": ["wasm"]}, {"required": ["module"]}]


class ExecutionForm(BaseModel):
    """The multipart form of an execution request."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        arbitrary_types_allowed=True,
        json_schema_extra=_one_module,
    )

    wasm: Annotated[
        Payload | None,
        Field(
            description="The module: a .wasm binary or .wat text (judged by content). "
            "At most MAX_WASM_SIZE bytes (10 MiB). Leave it out to run a stored module "
            "named in `module`.",
            json_schema_extra=_absent_not_null,
        ),
        FieldRules(ProblemCode.WASM_TOO_LARGE, "The module"),
    ] = None
    module: Annotated[
        str | None,
        Field(
            max_length=MAX_MODULE_REFERENCE_BYTES,
            pattern=MODULE_REFERENCE_PATTERN,
            description="Instead of `wasm`, a stored module (POST /api/v1/modules): its id "
            "(`sha256:` and 64 hex digits) or one of the account's names for it; or a public "
            "runtime (GET /api/v1/runtimes) by name (`lua`, its newest version) or "
            "name@version. The run and its response are the same as with the bytes uploaded.",
            json_schema_extra=_absent_reference,
        ),
        FieldRules(ProblemCode.INVALID_MODULE_REFERENCE, "`module`", MAX_MODULE_REFERENCE_BYTES),
    ] = None
    input: Annotated[
        Payload,
        Field(
            description="stdin, as a file or a text field. At most MAX_INPUT_SIZE bytes (1 MiB)."
        ),
        FieldRules(ProblemCode.INPUT_TOO_LARGE, "The input"),
    ] = b""
    args: Annotated[
        Json[Annotated[list[str], Field(max_length=MAX_ARGS)]],
        Field(
            description='A JSON array of strings, e.g. ["-n", "3"]. '
            "argv[0] is the module's file name.",
            json_schema_extra={"example": "[]"},
        ),
        FieldRules(ProblemCode.INVALID_ARGS, "`args`", MAX_ARGS_BYTES),
    ] = Field(default_factory=list)
    env: Annotated[
        Json[Annotated[dict[str, str], Field(max_length=MAX_ENV_VARS)]],
        Field(
            description='A JSON object of strings, e.g. {"LANG": "C"}. '
            "The guest sees exactly these variables and nothing of the host's.",
            json_schema_extra={"example": "{}"},
        ),
        FieldRules(ProblemCode.INVALID_ENV, "`env`", MAX_ENV_BYTES),
    ] = Field(default_factory=dict)
    deterministic: Annotated[
        bool,
        Field(
            description="true: virtual clocks (starting 2024-01-01T00:00:00Z, advanced only "
            "by sleeping) and random_get seeded by `seed`, so the same request prints the "
            "same bytes.",
            json_schema_extra={"example": False},
        ),
        FieldRules(ProblemCode.INVALID_DETERMINISTIC, "`deterministic`", MAX_SMALL_FIELD_BYTES),
    ] = False
    seed: Annotated[
        int | None,
        Field(
            ge=0,
            le=MAX_U64,
            description="random_get's seed when deterministic; left out, 0. A deterministic "
            "run that sends it (0 included) is answered from the result cache when the same "
            "request ran lately (see `cache`).",
            json_schema_extra=_absent_is_zero,
        ),
        FieldRules(ProblemCode.INVALID_SEED, "`seed`", MAX_SMALL_FIELD_BYTES),
    ] = None
    max_fuel: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_U64,
            description="A fuel budget; the run ends `fuel_exhausted` when it is used up. "
            "The tier's own cap, if any, still applies. Without it only that cap and the "
            "time limit bound a run; the example (10^12) is more than any run can use "
            "within the time limit.",
            json_schema_extra=_absent_is_unbounded,
        ),
        FieldRules(ProblemCode.INVALID_MAX_FUEL, "`max_fuel`", MAX_SMALL_FIELD_BYTES),
    ] = None
    files: Annotated[
        list[Payload],
        Field(
            description="Input files for the run's private directory, which the guest sees "
            "preopened at `/` (read-write): one part per file, the part's filename being "
            "the file's path in it (`data/in.csv`; parent directories are made). At most "
            "FILES_MAX_INPUT_BYTES (16 MiB) and FILES_MAX_INPUT_ENTRIES (1,000) entries in "
            "all. Not with `archive`. A run given `files`, `archive` or `collect` has a "
            "directory (an empty one, with `collect` alone); other runs have none.",
            # What Swagger UI's "Try it out" starts from: no file (else it sends "string").
            json_schema_extra={"example": []},
        ),
        FieldRules(ProblemCode.FILES_TOO_LARGE, "The input files"),
    ] = Field(default_factory=list)
    archive: Annotated[
        Payload | None,
        Field(
            description="Instead of `files`, one tar, tar.gz or zip archive (recognised by "
            "content) expanded into the run's directory, empty directories included. Links, "
            "devices and FIFOs are refused; the expanded size counts against "
            "FILES_MAX_INPUT_BYTES as it is expanded. An empty field is no archive.",
            json_schema_extra=_absent_not_null,
        ),
        FieldRules(ProblemCode.FILES_TOO_LARGE, "The archive"),
    ] = None
    collect: Annotated[
        Json[Annotated[list[str], Field(max_length=MAX_COLLECT_PATTERNS)]],
        Field(
            description="A JSON array of glob patterns, relative to the run's directory, of "
            'the files to return in the result\'s `files` (`["**"]`: every file; `*` and `?` '
            "stay within a path component, a `**` component spans directories). Only regular "
            "files, never through a link; contents (base64) up to FILES_MAX_OUTPUT_BYTES "
            "(8 MiB) in all, then `files_truncated`.",
            json_schema_extra={"example": "[]"},
        ),
        FieldRules(ProblemCode.INVALID_COLLECT, "`collect`", MAX_COLLECT_BYTES),
    ] = Field(default_factory=list)
    cache: Annotated[
        bool,
        Field(
            description="false: run even if the result is cached, and do not cache it. Only "
            "a `deterministic` run with an explicit `seed` and no `files`, `archive` or "
            "`collect` is cached (a `timeout` never): for RESULT_CACHE_SECONDS (1 hour), "
            "per account. A repeat of it is answered with the same result and `cached: "
            "true`, without running; it still counts against the rate limit and the "
            "daily quota.",
            json_schema_extra={"example": True},
        ),
        FieldRules(ProblemCode.INVALID_CACHE, "`cache`", MAX_SMALL_FIELD_BYTES),
    ] = True


def _check_required_fields_name_their_refusal() -> None:
    for name, field in ExecutionForm.model_fields.items():
        if field.is_required() != (field_rules(field).missing is not None):
            raise TypeError(f"{name}: a required field, and only one, names its refusal")


def field_rules(field: FieldInfo) -> FieldRules:
    (rules,) = [item for item in field.metadata if isinstance(item, FieldRules)]
    return rules


def integer_bounds(field: FieldInfo) -> tuple[int, int]:
    """The (minimum, maximum) an integer field declares."""
    minimum: list[Any] = [
        item.ge for item in field.metadata if isinstance(item, annotated_types.Ge)
    ]
    maximum: list[Any] = [
        item.le for item in field.metadata if isinstance(item, annotated_types.Le)
    ]
    return int(minimum[0]), int(maximum[0])


def execution_form_schema() -> dict[str, Any]:
    """The form's JSON Schema, as the OpenAPI document's request body."""
    return ExecutionForm.model_json_schema()


_check_required_fields_name_their_refusal()
