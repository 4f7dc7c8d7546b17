"""The execute form's documented examples are what Swagger UI's "Try it out" pre-fills:
sent as they are, with a module, they must run (not a 400, not `fuel_exhausted`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.api.wat import HELLO
from tests.fixtures.app import LiveServer, create_account
from tests.fixtures.database import run_outside_loop


def _form_value(example: Any) -> str:
    # What Swagger UI puts in a multipart field: booleans and numbers as JSON text.
    return example if isinstance(example, str) else json.dumps(example)


def test_every_execute_form_example_runs(
    live_server: LiveServer, migrated_database_url: str
) -> None:
    account = run_outside_loop(lambda: asyncio.run(create_account(migrated_database_url)))
    spec = httpx.get(f"{live_server.url}/openapi.json").json()
    assert list(spec["paths"]).index("/api/v1/execute") < list(spec["paths"]).index("/execute")
    for path in ("/api/v1/execute", "/execute"):
        form = spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        fields = {
            name: _form_value(schema["example"])
            for name, schema in form["schema"]["properties"].items()
            if "example" in schema and schema["example"] != []  # no parts at all
        }
        # Every field but the files the user picks (module, stdin, files, archive) has an
        # example; a reference's is empty, so a form sent with every example uploads its
        # module (and, with `collect`'s, runs with an empty directory).
        assert set(fields) == {
            "module",
            "args",
            "env",
            "deterministic",
            "seed",
            "max_fuel",
            "collect",
            "cache",
        }
        assert fields["module"] == ""
        response = httpx.post(
            f"{live_server.url}{path}",
            headers=account.headers,
            files={"wasm": ("hello.wat", HELLO.encode())},
            data=fields,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "success"
        assert response.json()["output"] == "Hello, WasmWiz!\n"
