"""Section 7: modules as resources: runs by reference, and batches, against their baselines.

Three comparisons, each side by side in one run on one server:

- A ~2 MB module run by reference (`module=`) against the same run with the module
  uploaded each time (cached either way: what differs is moving and hashing 2 MB).
- A batch of 100 hello-world cases against 100 single requests over one keep-alive
  connection, in executions per second.
- A batch of 100 CPU-bound cases (SHA-256 of the same ~700 KiB, shared in `defaults`) run
  side by side on the server's two execution slots, against the same batch for an account
  allowed one run at a time: whether a batch uses both cores.

Every timed request goes over one keep-alive connection of the stdlib's client (see
`_Client`), as section 10 does.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Any

from bench import modules
from bench.support import (
    BenchAccount,
    BenchServer,
    Context,
    Section,
    ms,
    multipart,
    prepare_database,
)

CASES = 100
SHA_INPUT_BYTES = 700 * 1024


_Body = tuple[str, bytes]


class _Client:
    """One keep-alive connection through the stdlib's client, every body built beforehand.

    The lightest client Python has, so what is timed is the server: a heavier client's own
    cost per request (httpx adds about 0.6 ms here) is the same on both sides of every
    comparison, and would make a batch look better against single requests and a run by
    reference look worse against an upload than the server makes them.
    """

    def __init__(self, port: int, account: BenchAccount) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self._account = account

    def close(self) -> None:
        self._connection.close()

    def post(self, path: str, body: _Body) -> tuple[float, dict[str, Any]]:
        """The round trip's seconds and the answer; anything but a 2xx raises."""
        content_type, content = body
        headers = {**self._account.headers, "Content-Type": content_type}
        started = time.perf_counter()
        self._connection.request("POST", path, body=content, headers=headers)
        response = self._connection.getresponse()
        answer = response.read()
        elapsed = time.perf_counter() - started
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{path} answered {response.status}: {answer[:300]!r}")
        decoded: dict[str, Any] = json.loads(answer)
        return elapsed, decoded

    def execute(self, body: _Body, output: str) -> float:
        elapsed, result = self.post("/api/v1/execute", body)
        if result["output"] != output:
            raise RuntimeError(f"unexpected output: {result['output']!r}")
        return elapsed

    def batch(
        self,
        module_id: str,
        cases: list[dict[str, object]],
        defaults: Mapping[str, object] | None = None,
    ) -> tuple[float, list[dict[str, Any]]]:
        fields = [
            ("module", None, module_id.encode()),
            ("cases", "cases.json", json.dumps(cases).encode()),
        ]
        if defaults is not None:
            fields.append(("defaults", "defaults.json", json.dumps(defaults).encode()))
        elapsed, answer = self.post("/api/v1/execute/batch", multipart(fields))
        results: list[dict[str, Any]] = answer["results"]
        return elapsed, results

    def store(self, wasm: bytes) -> str:
        _, answer = self.post("/api/v1/modules", multipart([("wasm", "module.wasm", wasm)]))
        module_id: str = answer["id"]
        return module_id


def run(context: Context) -> Section:
    section = Section("7. Modules as resources: by reference, and batches")
    var_dir, database_url = context.fresh_database("stored_modules")
    account = prepare_database(database_url)
    one_at_a_time = prepare_database(database_url, max_concurrent=1)
    repeats = context.count(30, 3)
    rounds = context.count(5, 1)
    # Two execution slots: the machine's two cores, as the figure assumes.
    server = BenchServer(var_dir, database_url, max_concurrent_executions="2").start()
    client = _Client(server.port, account)
    serial_client = _Client(server.port, one_at_a_time)
    try:
        big = modules.big_module()
        big_id = client.store(big)
        upload_body = multipart([("wasm", "big.wasm", big)])
        reference_body = multipart([("module", None, big_id.encode())])
        client.execute(upload_body, "big\n")  # both ways now find it compiled
        uploaded, by_reference = [], []
        for _ in range(repeats):  # interleaved, so drift in the machine's load is shared
            uploaded.append(client.execute(upload_body, "big\n"))
            by_reference.append(client.execute(reference_body, "big\n"))

        hello_id = client.store(modules.hello())
        hello_body = multipart([("module", None, hello_id.encode())])
        singles, batches = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(CASES):
                client.execute(hello_body, "Hello, WasmWiz!\n")
            singles.append(time.perf_counter() - started)
            elapsed, results = client.batch(hello_id, [{}] * CASES)
            if any(r["output"] != "Hello, WasmWiz!\n" for r in results):
                raise RuntimeError("a hello case printed something else")
            batches.append(elapsed)

        sha_id = client.store(modules.sha256())
        serial_client.store(modules.sha256())  # each account its own
        data = random.Random(7).randbytes(SHA_INPUT_BYTES)
        expected = hashlib.sha256(data).hexdigest() + "\n"
        defaults = {"stdin_base64": base64.b64encode(data).decode()}
        client.batch(sha_id, [{}], defaults)  # warm: compiled
        parallel, serial = [], []
        for _ in range(rounds):
            elapsed, results = client.batch(sha_id, [{}] * CASES, defaults)
            if any(r["output"] != expected for r in results):
                raise RuntimeError("a SHA-256 case gave a wrong digest")
            parallel.append(elapsed)
            elapsed, _ = serial_client.batch(sha_id, [{}] * CASES, defaults)
            serial.append(elapsed)
    finally:
        client.close()
        serial_client.close()
        server.stop()

    p50_upload, p50_reference = statistics.median(uploaded), statistics.median(by_reference)
    section.row(f"2 MB module uploaded each run (p50 of {repeats})", ms(p50_upload))
    section.row("2 MB module by reference (p50)", ms(p50_reference))
    section.row("by reference / uploaded", f"{p50_reference / p50_upload:.2f}")
    section.target(
        "by reference at most a third of uploading each time",
        p50_reference <= p50_upload / 3,
        f"{p50_reference / p50_upload:.2f}",
    )
    single_rate = CASES / statistics.median(singles)
    batch_rate = CASES / statistics.median(batches)
    section.row(f"{CASES} single requests, one keep-alive connection", f"{single_rate:.0f}/s")
    section.row(f"one batch of {CASES} hello-world cases", f"{batch_rate:.0f}/s")
    section.row("batch / single requests", f"{batch_rate / single_rate:.1f}x")
    section.target(
        "a batch >= 10x the executions per second of single requests",
        batch_rate >= 10 * single_rate,
        f"{batch_rate / single_rate:.1f}x",
    )
    parallel_rate = CASES / statistics.median(parallel)
    serial_rate = CASES / statistics.median(serial)
    section.row(f"{CASES} SHA-256 cases, one at a time", f"{serial_rate:.1f}/s")
    section.row(f"{CASES} SHA-256 cases, side by side on 2 slots", f"{parallel_rate:.1f}/s")
    section.row("side by side / one at a time", f"{parallel_rate / serial_rate:.2f}x")
    section.target(
        "a CPU-bound batch >= 1.6x the single-thread rate",
        parallel_rate >= 1.6 * serial_rate,
        f"{parallel_rate / serial_rate:.2f}x",
    )
    section.figures = {
        "by_reference_p50": p50_reference,
        "uploaded_p50": p50_upload,
        "single_requests_per_second": single_rate,
        "batch_cases_per_second": batch_rate,
        "cpu_batch_parallel_per_second": parallel_rate,
        "cpu_batch_serial_per_second": serial_rate,
    }
    return section


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "stored_modules", *sys.argv[1:]]))
