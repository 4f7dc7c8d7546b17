"""The committed OpenAPI document is what the app serves, and it is complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.fixtures.app import LiveServer, make_settings
from wasmwiz.app import create_app
from wasmwiz.cli.openapi_spec import render

COMMITTED = Path(__file__).parents[2] / "docs" / "openapi.json"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    settings = make_settings(tmp, f"sqlite:///{tmp / 'unused.db'}")
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_committed_document_matches_the_app(spec: dict[str, Any]) -> None:
    assert COMMITTED.read_text() == render(spec), (
        "docs/openapi.json is out of date: run `make openapi` and commit it"
    )


def test_served_document_is_the_same(spec: dict[str, Any], live_server: LiveServer) -> None:
    served = httpx.get(f"{live_server.url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == spec


def test_every_operation_is_described(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    for path, method, operation in operations(spec):
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        assert operation.get("description"), where
        assert "500" in operation["responses"], where


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def _examples(spec: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [example["value"] for example in media["examples"].values()]
    return list(_resolve(spec, media.get("schema", {})).get("examples", []))


def test_every_response_has_a_schema_and_valid_examples(spec: dict[str, Any]) -> None:
    bundle = {"components": spec["components"]}
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            where = f"{method.upper()} {path} {status}"
            assert response.get("description"), where
            for media_type, media in response.get("content", {}).items():
                assert "schema" in media, f"{where} {media_type}: no schema"
                examples = _examples(spec, media)
                assert examples, f"{where} {media_type}: no example"
                validator = jsonschema_rs.Draft202012Validator({**media["schema"], **bundle})
                for example in examples:
                    errors = [str(error) for error in validator.iter_errors(example)]
                    assert not errors, f"{where} {media_type}: example invalid: {errors}"


def test_problem_responses_name_their_codes(spec: dict[str, Any]) -> None:
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            problem = response.get("content", {}).get("application/problem+json")
            if problem is None:
                continue
            codes = {example["value"]["code"] for example in problem["examples"].values()}
            assert codes, f"{method.upper()} {path} {status}"
            assert all(
                example["value"]["status"] == int(status)
                for example in problem["examples"].values()
            ), f"{method.upper()} {path} {status}"


def test_every_documented_code_is_in_the_error_guide(spec: dict[str, Any]) -> None:
    guide = (COMMITTED.parent / "errors.md").read_text()
    troubleshooting = (COMMITTED.parent / "troubleshooting.md").read_text()
    codes = {
        example["value"]["code"]
        for _, _, operation in operations(spec)
        for response in operation["responses"].values()
        for example in response.get("content", {})
        .get("application/problem+json", {})
        .get("examples", {})
        .values()
    }
    assert codes
    for code in sorted(codes):
        assert f"`{code}`" in guide, f"{code} is not in docs/errors.md"
        assert f"`{code}`" in troubleshooting, f"{code} is not in docs/troubleshooting.md"


def test_authenticated_operations_declare_bearer_and_401(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        **spec["components"]["securitySchemes"]["apiKey"],
        "type": "http",
        "scheme": "bearer",
    }
    secured = {
        (path, method)
        for path, method, operation in operations(spec)
        if operation.get("security") == [{"apiKey": []}]
    }
    assert ("/api/v1/execute", "post") in secured
    assert ("/api/v1/keys", "get") in secured
    assert ("/health", "get") not in secured
    for path, method in secured:
        assert "401" in spec["paths"][path][method]["responses"]


def test_execute_documents_rate_limit_headers_and_the_form(spec: dict[str, Any]) -> None:
    for path in ("/api/v1/execute", "/execute"):
        operation = spec["paths"][path]["post"]
        ok_headers = operation["responses"]["200"]["headers"]
        for header in (
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "X-RateLimit-Daily-Limit",
            "X-RateLimit-Daily-Remaining",
            "X-RateLimit-Daily-Reset",
        ):
            assert header in ok_headers
            assert header in operation["responses"]["429"]["headers"]
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert "Retry-After" in operation["responses"]["503"]["headers"]
        form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert form["oneOf"] == [{"required": ["wasm"]}, {"required": ["module"]}]
        assert "sha256:" in form["properties"]["module"]["description"]
        assert "10 MiB" in form["properties"]["wasm"]["description"]
        assert "1 MiB" in form["properties"]["input"]["description"]
        outcomes = operation["responses"]["200"]["content"]["application/json"]["examples"]
        assert set(spec["components"]["schemas"]["Outcome"]["enum"]) <= set(outcomes)
