"""Runs a WebAssembly module on WasmWiz with plain httpx (`pip install httpx`).

    export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
    echo "Ada" | .venv/bin/python examples/python/execute_httpx.py src/wasmwiz/examples/echo.wat

With `--name echo` it stores the module under that name first and runs it by reference.
`--file PATH` (repeatable) puts a local file in the run's directory under its base name;
`--collect PATTERN` brings back the files the run leaves that match it, printed after its
output.
"""

import argparse
import base64
import json
import os
import sys
from pathlib import Path

import httpx


def refused(response: httpx.Response) -> int:
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


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a WebAssembly module on WasmWiz.")
    parser.add_argument("module", type=Path, help="a .wasm or .wat file")
    parser.add_argument("--name", help="store the module under this name, then run it by name")
    parser.add_argument("--file", type=Path, action="append", default=[], help="a file to send")
    parser.add_argument("--collect", help="a glob of the files to bring back, e.g. 'out/*'")
    options = parser.parse_args()
    url = os.environ.get("WASMWIZ_URL", "http://127.0.0.1:8080")
    key = os.environ["WASMWIZ_API_KEY"]
    module: Path = options.module
    # A list of parts, not a dict: `files` is one part per file, its filename the file's
    # path in the run's directory (here its base name).
    files = [("input", ("input", sys.stdin.buffer.read()))]
    files += [("files", (path.name, path.read_bytes())) for path in options.file]
    # args, env and collect are JSON-encoded form fields.
    data = {"args": json.dumps([]), "env": json.dumps({"LANG": "C"})}
    if options.collect:
        data["collect"] = json.dumps([options.collect])
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as http:
            if options.name is None:
                files.append(("wasm", (module.name, module.read_bytes())))
            else:
                # Store the module once: 201, or 200 if these bytes were stored already.
                stored = http.post(
                    "/api/v1/modules",
                    files={"wasm": (module.name, module.read_bytes())},
                    data={"name": options.name},
                )
                if stored.status_code not in (200, 201):
                    return refused(stored)
                print(f"stored {stored.json()['id']} as {options.name}", file=sys.stderr)
                # Then run it by reference: `module` (a name or its id) instead of `wasm`.
                data["module"] = options.name
            # base64 keeps the program's output byte for byte, whatever it wrote.
            response = http.post(
                "/api/v1/execute", files=files, data=data, params={"encoding": "base64"}
            )
    except httpx.HTTPError as error:
        print(f"Could not reach {url}: {error}", file=sys.stderr)
        return 2

    if response.status_code != 200:
        return refused(response)

    result = response.json()
    print(f"status: {result['status']}, exit code: {result['exit_code']}")
    sys.stdout.flush()
    sys.stdout.buffer.write(base64.b64decode(result["output"]))
    sys.stderr.buffer.write(base64.b64decode(result["stderr"]))
    # Each collected file: its content is always base64. A program that writes them to
    # disk must keep every path inside its directory (no absolute path, no `..`).
    for file in result["files"]:
        if file["content"] is None:  # past the service's cap on collected files
            print(f"file: {file['path']} ({file['size']} bytes, not sent: over the cap)")
        else:
            print(f"file: {file['path']} ({file['size']} bytes)")
            sys.stdout.flush()
            sys.stdout.buffer.write(base64.b64decode(file["content"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
