"""Runs a WebAssembly module on WasmWiz with plain httpx (`pip install httpx`).

    export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
    echo "Ada" | .venv/bin/python examples/python/execute_httpx.py src/wasmwiz/examples/echo.wat
"""

import base64
import json
import os
import sys
from pathlib import Path

import httpx


def main() -> int:
    url = os.environ.get("WASMWIZ_URL", "http://127.0.0.1:8080")
    key = os.environ["WASMWIZ_API_KEY"]
    module = Path(sys.argv[1])
    try:
        response = httpx.post(
            f"{url}/api/v1/execute",
            headers={"Authorization": f"Bearer {key}"},
            files={
                "wasm": (module.name, module.read_bytes()),
                "input": ("input", sys.stdin.buffer.read()),
            },
            # args and env are JSON-encoded form fields.
            data={"args": json.dumps([]), "env": json.dumps({"LANG": "C"})},
            # base64 keeps the program's output byte for byte, whatever it wrote.
            params={"encoding": "base64"},
            timeout=60,
        )
    except httpx.HTTPError as error:
        print(f"Could not reach {url}: {error}", file=sys.stderr)
        return 2

    if response.status_code != 200:
        # Refusals are RFC 9457 problem details: match on `code`.
        problem = response.json()
        retry = response.headers.get("Retry-After")
        hint = f"; retry after {retry} s" if retry else ""
        print(
            f"WasmWiz refused the request: {problem['code']} "
            f"(HTTP {response.status_code}): {problem['detail']}{hint}",
            file=sys.stderr,
        )
        return 1

    result = response.json()
    print(f"status: {result['status']}, exit code: {result['exit_code']}")
    sys.stdout.flush()
    sys.stdout.buffer.write(base64.b64decode(result["output"]))
    sys.stderr.buffer.write(base64.b64decode(result["stderr"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
