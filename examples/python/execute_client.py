"""Runs a WebAssembly module on WasmWiz with the Python client, `wasmwiz-client` (client/).

    export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
    echo "Ada" | .venv/bin/python examples/python/execute_client.py src/wasmwiz/examples/echo.wat

With `--name echo` it stores the module under that name first and runs it by reference.
`--file PATH` (repeatable) puts a local file in the run's directory under its base name;
`--collect PATTERN` brings back the files the run leaves that match it, printed after its
output.
"""

import argparse
import sys
from pathlib import Path

from wasmwiz_client import Client, ConnectionFailed, ProblemError, RateLimitedError


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a WebAssembly module on WasmWiz.")
    parser.add_argument("module", type=Path, help="a .wasm or .wat file")
    parser.add_argument("--name", help="store the module under this name, then run it by name")
    parser.add_argument("--file", type=Path, action="append", default=[], help="a file to send")
    parser.add_argument("--collect", help="a glob of the files to bring back, e.g. 'out/*'")
    options = parser.parse_args()
    # The run's directory: each file under its base name. Paths are read when it is sent.
    files = {path.name: path for path in options.file}
    collect = [options.collect] if options.collect else None
    # Client.from_env() reads WASMWIZ_URL and WASMWIZ_API_KEY. retry=True would wait out
    # 429 and 503 refusals as their Retry-After says; here we show handling them ourselves.
    try:
        with Client.from_env() as client:
            stdin = sys.stdin.buffer.read()
            if options.name is None:
                result = client.execute(options.module, input=stdin, files=files, collect=collect)
            else:
                # Uploading bytes stored before is no error: it answers the same module.
                stored = client.upload_module(options.module, name=options.name)
                print(f"stored {stored.id} as {options.name}", file=sys.stderr)
                result = client.execute(
                    module=options.name, input=stdin, files=files, collect=collect
                )
    except RateLimitedError as error:
        print(f"Rate limited: retry in {error.retry_after} s", file=sys.stderr)
        return 1
    except ProblemError as error:
        # Every refusal has a stable code (docs/errors.md) and a request id for support.
        print(
            f"WasmWiz refused the request: {error.code} (HTTP {error.status}): {error.detail}",
            file=sys.stderr,
        )
        return 1
    except ConnectionFailed as error:
        print(error, file=sys.stderr)
        return 2

    # A trap or a timeout is not an exception: it is the run's status.
    print(f"status: {result.status}, exit code: {result.exit_code}", flush=True)
    sys.stdout.buffer.write(result.stdout)
    sys.stderr.buffer.write(result.stderr)
    # Each collected file, printed here; result.write_files(directory) would save them
    # under a directory, refusing any path that leads out of it.
    for file in result.files:
        if file.content is None:  # past the service's cap on collected files
            print(f"file: {file.path} ({file.size} bytes, not sent: over the cap)", flush=True)
        else:
            print(f"file: {file.path} ({file.size} bytes)", flush=True)
            sys.stdout.buffer.write(file.content)
            sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
