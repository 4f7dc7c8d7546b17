"""Reads a module upload (POST /api/v1/modules) from a multipart form: `wasm` and `name`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from wasmwiz.errors import InvalidRequest, WasmWizError
from wasmwiz.http_common.execution_form import (
    execution_form_limits,
    read_limited_form,
    refuse_body_over,
)
from wasmwiz.http_common.multipart import FieldLimit
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.stored_modules import ModuleUpload

_FORM_OVERHEAD_BYTES = 16 * 1024
_MAX_NAME_BYTES = 64

# The form as the OpenAPI document shows it.
MODULE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["wasm"],
    "additionalProperties": False,
    "properties": {
        "wasm": {
            "type": "string",
            "format": "binary",
            "description": "The module: a .wasm binary or .wat text (judged by content). "
            "At most MAX_WASM_SIZE bytes (10 MiB).",
        },
        "name": {
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$",
            "description": "A name to point at the module (as PUT /api/v1/modules/names/{name}).",
            "example": "grader",
        },
    },
}


def _name_too_long(limit: int) -> WasmWizError:
    return InvalidRequest(
        f"`name` is longer than the limit of {limit} bytes.", code=ProblemCode.INVALID_MODULE_NAME
    )


@dataclass(frozen=True, slots=True)
class ModuleFormReader:
    """The upload form's reader under the app's module size limit, built once by create_app."""

    max_wasm_size: int
    limits: Mapping[str, FieldLimit] = field(init=False)
    max_body: int = field(init=False)

    def __post_init__(self) -> None:
        wasm = execution_form_limits(self.max_wasm_size, 0)["wasm"]
        limits = {"wasm": wasm, "name": FieldLimit(_MAX_NAME_BYTES, _name_too_long)}
        object.__setattr__(self, "limits", limits)
        object.__setattr__(
            self, "max_body", self.max_wasm_size + _MAX_NAME_BYTES + _FORM_OVERHEAD_BYTES
        )

    def refuse_declared_oversize(self, request: Request) -> None:
        """413 from the head alone, before admission."""
        refuse_body_over(request, self.max_body)

    async def read(self, request: Request) -> ModuleUpload:
        parts = await read_limited_form(request, self.limits, self.max_body)
        wasm = parts.get("wasm")
        if wasm is None:
            raise InvalidRequest(
                "Send the module in the `wasm` field (a .wasm binary or .wat text file).",
                code=ProblemCode.MISSING_WASM,
            )
        name = parts.get("name")
        if name is None:
            return ModuleUpload(wasm.contents)
        try:
            text = bytes(name.data).decode().strip()
        except UnicodeDecodeError:
            text = "\0"  # not a name: refused as one by the service
        return ModuleUpload(wasm.contents, text or None)
