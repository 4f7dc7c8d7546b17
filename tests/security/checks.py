"""What every security case asserts: the precise outcome or refusal, then a healthy service."""

from __future__ import annotations

from typing import Any

import httpx

HELLO = b"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Hello, WasmWiz!\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


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
