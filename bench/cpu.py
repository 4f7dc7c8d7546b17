"""Section 5: SHA-256 of 1 MiB, through the WasmWiz API versus a fresh Node.js per run.

The same module (modules/sha256.wasm, from modules/sha256.wat) both ways: over HTTP to a
live server (upload the input, run, answer), and `node node_wasi.mjs sha256.wasm < input`,
a new process per execution, which is what someone scripting it themselves would do.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import statistics
import subprocess
import sys
import time

import httpx

from bench import modules
from bench.support import BenchServer, Context, Section, ms, prepare_database

INPUT_BYTES = 1024 * 1024


def run(context: Context) -> Section:
    section = Section("5. CPU-bound: SHA-256 of 1 MiB, WasmWiz API vs Node.js per process")
    wasm = modules.sha256()
    if modules.binary(modules.SHA256_WAT.read_text()) != wasm:
        raise RuntimeError("modules/sha256.wasm is not what sha256.wat converts to; rebuild it")
    data = random.Random(7).randbytes(INPUT_BYTES)
    expected = hashlib.sha256(data).hexdigest() + "\n"
    repeats = context.count(20, 3)

    var_dir, database_url = context.fresh_database("cpu")
    account = prepare_database(database_url)
    server = BenchServer(var_dir, database_url).start()
    api: list[float] = []
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for attempt in range(repeats + 1):  # the first compiles; it is not counted
                started = time.perf_counter()
                response = client.post(
                    "/api/v1/execute",
                    headers=account.headers,
                    files={"wasm": ("sha256.wasm", wasm), "input": ("input", data)},
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or response.json()["output"] != expected:
                    raise RuntimeError(f"wrong answer: {response.text[:300]}")
                if attempt:
                    api.append(elapsed)
    finally:
        server.stop()
    api_median = statistics.median(api)
    section.row("WasmWiz API round trip (median)", ms(api_median))

    node = shutil.which("node")
    if node is None:
        section.row("Node.js", "not found: comparison skipped")
        section.target("API round trip faster than a Node.js process", False, "no node")
        section.figures = {"api_seconds": api_median}
        return section
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    runs: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        completed = subprocess.run(
            [node, "--no-warnings", str(modules.NODE_RUNNER), str(modules.SHA256_WASM)],
            input=data,
            capture_output=True,
            check=False,
        )
        runs.append(time.perf_counter() - started)
        if completed.stdout.decode() != expected:
            raise RuntimeError(f"node gave a wrong answer: {completed.stderr.decode()[:300]}")
    node_median = statistics.median(runs)
    section.row(f"Node.js {version.strip()} fresh process (median)", ms(node_median))
    section.row("Node.js / WasmWiz", f"{node_median / api_median:.1f}x")
    section.target(
        "API round trip faster than a Node.js process per run",
        api_median < node_median,
        f"{ms(api_median)} vs {ms(node_median)}",
    )
    section.figures = {"api_seconds": api_median, "node_seconds": node_median}
    return section


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "cpu", *sys.argv[1:]]))
