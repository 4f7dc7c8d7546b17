"""What every security case asserts: the precise outcome or refusal, then a healthy service."""

from __future__ import annotations

from typing import Any

import httpx

from wasmwiz.sandbox import load_example

HELLO = load_example("hello")


def execute(api: httpx.Client, wasm: bytes | str, **fields: str) -> httpx.Response:
    data = wasm.encode() if isinstance(wasm, str) else wasm
    return api.post(
        "/api/v1/execute",
        params={"encoding": "base64"},
        files={"wasm": ("guest.wasm", data)},
        data=fields,
    )


def assert_hello_world(api: httpx.Client) -> None:
    response = api.post("/api/v1/execute", files={"wasm": ("hello.wat", HELLO)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["output"]) == ("success", "Hello, WasmWiz!\n")


def ran(api: httpx.Client, wasm: bytes | str, status: str, **fields: str) -> dict[str, Any]:
    """Run `wasm`, require outcome `status`, check the service still works; the body."""
    response = execute(api, wasm, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert_hello_world(api)
    return body


def refused(api: httpx.Client, wasm: bytes | str, http_status: int, code: str) -> dict[str, Any]:
    """Send `wasm`, require a problem-details refusal with `code`, check the service."""
    response = execute(api, wasm)
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    assert "Traceback" not in problem["detail"]
    assert_hello_world(api)
    return problem
