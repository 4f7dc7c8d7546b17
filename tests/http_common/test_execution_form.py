"""The execute form's reader and its documented schema agree: one model describes both."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from wasmwiz.errors import InvalidRequest
from wasmwiz.http_common.execution_form import (
    execution_form_from_parts,
    execution_form_limits,
)
from wasmwiz.http_common.execution_form_model import (
    MAX_U64,
    ExecutionForm,
    execution_form_schema,
    field_rules,
)
from wasmwiz.http_common.multipart import FormPart
from wasmwiz.problem_codes import ProblemCode

SCHEMA = execution_form_schema()
MODULE = b"(module)"


def _part(name: str, data: bytes) -> FormPart:
    part = FormPart(name=name, filename=None, content_type=None)
    part.append(data, 0, len(data))
    return part


def _read(**fields: bytes) -> ExecutionForm:
    parts = {name: _part(name, data) for name, data in {"wasm": MODULE, **fields}.items()}
    return execution_form_from_parts(parts)


def _documented(name: str, raw: str) -> bool:
    """Whether the schema accepts `raw` as the value of the field `name`."""
    schema = SCHEMA["properties"][name]
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    if "contentSchema" in schema:  # a JSON document in a string
        schema = schema["contentSchema"]
    return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(value))


CASES = [
    ("seed", "0"),
    ("seed", "7"),
    ("seed", str(MAX_U64)),
    ("seed", str(MAX_U64 + 1)),
    ("seed", "-1"),
    ("seed", "1.5"),
    ("seed", '"3"'),
    ("max_fuel", "1"),
    ("max_fuel", "0"),
    ("max_fuel", str(MAX_U64)),
    ("max_fuel", str(MAX_U64 + 1)),
    ("max_fuel", "-5"),
    ("deterministic", "true"),
    ("deterministic", "false"),
    ("deterministic", '"yes"'),
    ("cache", "true"),
    ("cache", "false"),
    ("cache", '"no"'),
    ("args", '["-n", "3"]'),
    ("args", "[]"),
    ("args", "[1]"),
    ("args", '{"a": "b"}'),
    ("args", json.dumps(["x"] * 1024)),
    ("args", json.dumps(["x"] * 1025)),
    ("env", '{"LANG": "C"}'),
    ("env", "{}"),
    ("env", '{"A": 1}'),
    ("env", '["A"]'),
    ("env", json.dumps({f"V{i}": "" for i in range(1024)})),
    ("env", json.dumps({f"V{i}": "" for i in range(1025)})),
]


@pytest.mark.parametrize(("name", "raw"), CASES)
def test_the_reader_accepts_what_the_schema_documents(name: str, raw: str) -> None:
    if _documented(name, raw):
        _read(**{name: raw.encode()})
    else:
        with pytest.raises(InvalidRequest) as refusal:
            _read(**{name: raw.encode()})
        assert refusal.value.code == field_rules(ExecutionForm.model_fields[name]).code


def test_absent_fields_take_the_documented_defaults() -> None:
    form = _read()
    for name, schema in SCHEMA["properties"].items():
        if "default" in schema:
            assert getattr(form, name) == schema["default"] or (
                name == "input" and bytes(form.input) == b""
            ), name
    assert (form.args, form.env, form.max_fuel) == ([], {}, None)


def test_the_fields_read_are_the_fields_documented() -> None:
    assert set(execution_form_limits(100, 100)) == set(SCHEMA["properties"])
    assert SCHEMA["additionalProperties"] is False  # the reader refuses any other name
    # One of `wasm` and `module`, never both: the schema says so, and the reader holds to it.
    assert "required" not in SCHEMA
    assert SCHEMA["oneOf"] == [{"required": ["wasm"]}, {"required": ["module"]}]
    with pytest.raises(InvalidRequest) as refusal:
        execution_form_from_parts({})
    assert refusal.value.code == ProblemCode.MISSING_WASM
    with pytest.raises(InvalidRequest) as refusal:
        _read(module=b"grader")
    assert refusal.value.code == ProblemCode.WASM_AND_MODULE
    by_reference = execution_form_from_parts({"module": _part("module", b"grader")})
    assert (by_reference.module, by_reference.wasm) == ("grader", None)


def test_the_form_is_filled_with_the_values_read() -> None:
    form = _read(
        input=b"stdin",
        args=b'["-n", "3"]',
        env=b'{"LANG": "C"}',
        deterministic=b"true",
        seed=b"42",
        max_fuel=b"1000",
    )
    expected: dict[str, Any] = {
        "args": ["-n", "3"],
        "env": {"LANG": "C"},
        "deterministic": True,
        "seed": 42,
        "max_fuel": 1000,
    }
    assert {name: getattr(form, name) for name in expected} == expected
    assert (bytes(form.wasm), bytes(form.input)) == (MODULE, b"stdin")


def test_a_seed_left_out_is_told_apart_from_a_seed_of_zero() -> None:
    # Only a seed that was sent makes a deterministic run cacheable (the result cache).
    assert _read(deterministic=b"true").seed is None
    assert _read(deterministic=b"true", seed=b"").seed is None  # forms send empty fields
    assert _read(deterministic=b"true", seed=b"0").seed == 0


def test_cache_is_on_unless_the_form_says_false() -> None:
    assert _read().cache is True
    assert _read(cache=b"").cache is True
    assert _read(cache=b"false").cache is False
    assert _read(cache=b"0").cache is False
    assert _read(cache=b"TRUE").cache is True
    with pytest.raises(InvalidRequest) as refusal:
        _read(cache=b"maybe")
    assert refusal.value.code == ProblemCode.INVALID_CACHE
