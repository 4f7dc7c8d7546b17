"""Section 8: what a run's directory costs, against the same run without one.

Side by side in one run, interleaved so that drift in the machine's load is shared:

- In the sandbox (no HTTP): a hello-world run without a directory, with an empty one, and
  with one 64 KiB input file collected back (the directory is made, the module linked to
  the file calls, the file copied in, walked, hashed and copied out).
- Over HTTP: a hello-world request without files, and with one 1 KiB `files` part and
  `collect` (the form's extra parts, the result's base64).
- Throughput of the file calls: a C program copying a 1 MiB input file to an output file
  in 64 KiB reads and writes (copy.wasm), end to end over HTTP.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx

from bench import modules
from bench.support import BenchServer, Context, Section, ms, multipart, prepare_database
from wasmwiz.sandbox import RunRequest, Sandbox
from wasmwiz.sandbox.file_input import InputEntry

COPY = (
    Path(__file__).parents[1] / "tests" / "sandbox" / "fixtures" / "files" / "copy.wasm"
).read_bytes()
HELLO_OUTPUT = "Hello, WasmWiz!\n"


def _sandbox_runs(runs: int) -> dict[str, float]:
    requests = {
        "none": RunRequest(),
        "empty": RunRequest(files=()),
        "one file": RunRequest(files=(InputEntry("in.bin", bytes(64 * 1024)),), collect=("**",)),
    }
    samples: dict[str, list[float]] = {name: [] for name in requests}
    with Sandbox() as sandbox:
        hello = sandbox.prepare(modules.hello())
        for request in requests.values():
            sandbox.run(hello, request)  # linked for files once, before timing
        for _ in range(runs):
            for name, request in requests.items():
                started = time.perf_counter()
                sandbox.run(hello, request)
                samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def _post(client: httpx.Client, headers: dict[str, str], body: tuple[str, bytes]) -> float:
    content_type, content = body
    started = time.perf_counter()
    response = client.post(
        "/api/v1/execute", headers={**headers, "Content-Type": content_type}, content=content
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json()["status"] != "success":
        raise RuntimeError(f"unexpected answer: {response.status_code} {response.text[:300]}")
    return elapsed


def run(context: Context) -> Section:
    section = Section("8. Files: a run with a directory against one without")
    runs = context.count(2000, 100)
    in_sandbox = _sandbox_runs(runs)
    section.row(f"sandbox: hello, no directory (p50 of {runs})", ms(in_sandbox["none"]))
    section.row("sandbox: hello, an empty directory", ms(in_sandbox["empty"]))
    section.row("sandbox: hello, a 64 KiB file in and collected", ms(in_sandbox["one file"]))
    section.row(
        "sandbox: empty directory / none", f"{in_sandbox['empty'] / in_sandbox['none']:.2f}"
    )

    var_dir, database_url = context.fresh_database("files")
    account = prepare_database(database_url)
    repeats = context.count(300, 20)
    server = BenchServer(var_dir, database_url).start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            hello = modules.hello()
            plain = multipart([("wasm", "hello.wasm", hello)])
            with_files = multipart(
                [
                    ("wasm", "hello.wasm", hello),
                    ("files", "data/in.txt", bytes(1024)),
                    ("collect", None, b'["**"]'),
                ]
            )
            copy = multipart(
                [
                    ("wasm", "copy.wasm", COPY),
                    ("files", "in.txt", bytes(1024 * 1024)),
                    ("collect", None, b'["out/*"]'),
                ]
            )
            for body in (plain, with_files, copy):
                _post(client, account.headers, body)  # compiled, linked
            without, with_directory, copies = [], [], []
            for index in range(repeats):
                without.append(_post(client, account.headers, plain))
                with_directory.append(_post(client, account.headers, with_files))
                if index % 10 == 0:
                    copies.append(_post(client, account.headers, copy))
    finally:
        server.stop()
    p50_without, p50_with = statistics.median(without), statistics.median(with_directory)
    section.row(f"HTTP: hello, no files (p50 of {repeats})", ms(p50_without))
    section.row("HTTP: hello, a 1 KiB file in, collect ['**']", ms(p50_with))
    section.row("HTTP: with files / without", f"{p50_with / p50_without:.2f}")
    p50_copy = statistics.median(copies)
    section.row(f"HTTP: copy a 1 MiB file, collect it (p50 of {len(copies)})", ms(p50_copy))
    section.figures = {
        "sandbox_none_p50": in_sandbox["none"],
        "sandbox_empty_p50": in_sandbox["empty"],
        "sandbox_one_file_p50": in_sandbox["one file"],
        "http_without_p50": p50_without,
        "http_with_files_p50": p50_with,
        "http_copy_1mib_p50": p50_copy,
    }
    return section


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "files", *sys.argv[1:]]))
