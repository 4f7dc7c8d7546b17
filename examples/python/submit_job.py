"""Queues a WebAssembly run on WasmWiz as a job, waits for it, and prints its result.

    export WASMWIZ_URL=http://127.0.0.1:8080 WASMWIZ_API_KEY=ww_...
    echo "Ada" | .venv/bin/python examples/python/submit_job.py src/wasmwiz/examples/echo.wat

A job answers at once with its id; the run happens on the service's workers, and the
client polls until it is over (`wait`). `--callback-url URL` asks the service to POST the
job there when it ends as well (webhook_receiver.py shows a receiver); `--timeout S` stops
waiting, not the job.
"""

import argparse
import sys
from pathlib import Path

from wasmwiz_client import Client, ConnectionFailed, JobWaitTimeout, ProblemError


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a WebAssembly module on WasmWiz, later.")
    parser.add_argument("module", type=Path, help="a .wasm or .wat file")
    parser.add_argument("--callback-url", help="where the service POSTs the job when it ends")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait at most")
    options = parser.parse_args()
    try:
        with Client.from_env() as client:
            handle = client.submit(
                options.module, input=sys.stdin.buffer.read(), callback_url=options.callback_url
            )
            print(f"job {handle.id} submitted", file=sys.stderr, flush=True)
            job = handle.wait(timeout=options.timeout)
    except JobWaitTimeout as error:
        # The job goes on: `client.job(id).wait()` (or `wasmwiz remote jobs wait ID`) later.
        print(error, file=sys.stderr)
        return 3
    except ProblemError as error:
        print(
            f"WasmWiz refused the request: {error.code} (HTTP {error.status}): {error.detail}",
            file=sys.stderr,
        )
        return 1
    except ConnectionFailed as error:
        print(error, file=sys.stderr)
        return 2

    if job.result is None:  # failed, cancelled or expired: no run to show
        reason = f": {job.error.code}: {job.error.detail}" if job.error else ""
        print(f"job {job.id} {job.state}{reason}", file=sys.stderr)
        return 1
    # A trap or a timeout is not an exception here either: it is the run's status.
    result = job.result
    print(f"status: {result.status}, exit code: {result.exit_code}", flush=True)
    sys.stdout.buffer.write(result.stdout)
    sys.stderr.buffer.write(result.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
