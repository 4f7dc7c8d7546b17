"""Section 1, the floor: one cached hello-world run in-process, and multi-threaded throughput."""

from __future__ import annotations

import os
import sys
import threading
import time

from bench import modules
from bench.support import Context, Section, ms
from wasmwiz.sandbox import Limits, RunRequest, Sandbox

# The service's default limits, so the engine does the same work per run as over HTTP.
SERVICE_LIMITS = Limits(timeout_seconds=5.0, memory_bytes=128 * 1024 * 1024)


def run(context: Context) -> Section:
    section = Section("1. Raw engine: cached hello-world, in process")
    data = modules.hello()
    threads = os.cpu_count() or 1
    with Sandbox(limits=SERVICE_LIMITS, max_concurrency=threads) as sandbox:
        # What a cached HTTP request costs the sandbox: a digest, a cache hit, one run.
        def once() -> None:
            result = sandbox.run(sandbox.prepare(data), RunRequest())
            assert result.stdout == b"Hello, WasmWiz!\n", result

        for _ in range(50):
            once()
        samples = []
        for _ in range(context.count(3000, 300)):
            started = time.perf_counter()
            once()
            samples.append(time.perf_counter() - started)
        samples.sort()
        floor = samples[len(samples) // 2]
        single = _throughput(once, 1, context.seconds(3.0, 0.5))
        multi = _throughput(once, threads, context.seconds(5.0, 0.5))
    section.row("runs timed one by one", str(len(samples)))
    section.row("median run (the floor)", ms(floor))
    section.row("p99 run", ms(samples[int(len(samples) * 0.99)]))
    section.row("throughput, 1 thread", f"{single:,.0f} runs/s")
    section.row(f"throughput, {threads} threads (= cores)", f"{multi:,.0f} runs/s")
    section.figures = {
        "floor_seconds": floor,
        "threads": threads,
        "throughput_1": single,
        "throughput_cores": multi,
    }
    return section


def _throughput(once: object, threads: int, seconds: float) -> float:
    assert callable(once)
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def worker(index: int) -> None:
        start.wait()
        done = 0
        while time.perf_counter() < deadline:
            once()
            done += 1
        counts[index] = done

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for thread in workers:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "engine", *sys.argv[1:]]))
