"""A refusal crosses the worker boundary as a string and comes back as a registered code."""

from __future__ import annotations

import json

import pytest

from wasmwiz.problem_codes import MODULE_REFUSALS, ProblemCode
from wasmwiz.sandbox.compile_protocol import decode_refusal, encode_refusal
from wasmwiz.sandbox.models import ModuleRefused


@pytest.mark.parametrize("code", sorted(MODULE_REFUSALS))
def test_a_refusal_round_trips_as_its_registry_member(code: ProblemCode) -> None:
    decoded = decode_refusal(encode_refusal(ModuleRefused(code, "why")))
    assert decoded.code is code
    assert decoded.message == "why"


@pytest.mark.parametrize("code", ["not_a_code", "rate_limited", "", 7, None])
def test_a_code_that_is_not_a_module_refusal_is_refused(code: object) -> None:
    with pytest.raises(ValueError, match="not a refusal"):
        decode_refusal(json.dumps({"code": code, "message": "why"}).encode())
