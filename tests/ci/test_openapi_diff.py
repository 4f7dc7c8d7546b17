"""`.ci/openapi_diff.py`, the check behind "the OpenAPI document is unchanged in meaning":
a schema moved into or out of `components` is no difference; what a schema says is one."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.ci.gate import ROOT, load_ci_script

openapi_diff = load_ci_script("openapi_diff")
DOCUMENT: dict[str, Any] = json.loads((ROOT / "docs" / "openapi.json").read_text())


def test_the_committed_document_has_no_difference_from_itself() -> None:
    assert (
        openapi_diff.differences(
            openapi_diff.operations(DOCUMENT), openapi_diff.operations(copy.deepcopy(DOCUMENT))
        )
        == []
    )


def test_a_schema_moved_into_components_is_no_difference() -> None:
    moved = copy.deepcopy(DOCUMENT)
    form = moved["paths"]["/api/v1/execute"]["post"]["requestBody"]["content"]
    schema = form["multipart/form-data"]["schema"]
    moved["components"]["schemas"]["MovedExecutionForm"] = schema
    form["multipart/form-data"]["schema"] = {"$ref": "#/components/schemas/MovedExecutionForm"}
    assert (
        openapi_diff.differences(openapi_diff.operations(DOCUMENT), openapi_diff.operations(moved))
        == []
    )


def test_a_changed_bound_is_one_difference_naming_its_place() -> None:
    changed = copy.deepcopy(DOCUMENT)
    body = changed["paths"]["/api/v1/execute"]["post"]["requestBody"]["content"]
    seed = body["multipart/form-data"]["schema"]["properties"]["seed"]
    seed["maximum"] = 7
    found = openapi_diff.differences(
        openapi_diff.operations(DOCUMENT), openapi_diff.operations(changed)
    )
    assert len(found) == 1
    assert "/POST /api/v1/execute/requestBody/" in found[0]
    assert found[0].endswith("/properties/seed/maximum: 18446744073709551615 -> 7")
