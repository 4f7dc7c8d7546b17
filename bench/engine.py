"""Section 1, the floor: one cached hello-world run in-process, and multi-threaded throughput.

Then what one host call costs (a run of ten thousand one-byte writes), and what fuel
metering costs the guest: SHA-256 of 1 MiB in process, without a fuel
budget (the unmetered engine) and with one (the metered engine), interleaved.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
import sys
import threading
import time
from dataclasses import replace

from bench import modules
from bench.support import Context, Section, ms
from wasmwiz.sandbox import CompiledModule, Limits, RunRequest, Sandbox

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
        unmetered, metered = _metering(sandbox, context.count(25, 3))
        host_call = _host_call(sandbox, context.count(30, 3))
    section.row("runs timed one by one", str(len(samples)))
    section.row("median run (the floor)", ms(floor))
    section.row("p99 run", ms(samples[int(len(samples) * 0.99)]))
    section.row("throughput, 1 thread", f"{single:,.0f} runs/s")
    section.row(f"throughput, {threads} threads (= cores)", f"{multi:,.0f} runs/s")
    section.row("SHA-256 of 1 MiB, no fuel budget (not metered), guest", ms(unmetered))
    section.row(
        "the same with a fuel budget (metered)", f"{ms(metered)} ({metered / unmetered:.2f}x)"
    )
    section.row(f"a host call (fd_write of 1 byte, {modules.HOST_CALLS:,} in a run)", ms(host_call))
    section.figures = {
        "host_call_seconds": host_call,
        "floor_seconds": floor,
        "threads": threads,
        "throughput_1": single,
        "throughput_cores": multi,
        "sha256_unmetered_seconds": unmetered,
        "sha256_metered_seconds": metered,
    }
    return section


def _host_call(sandbox: Sandbox, repeats: int) -> float:
    """One host call's cost: a run of HOST_CALLS one-byte writes, less a hello-world run
    (the run's own cost), over the calls; medians, the two alternating."""
    calls, hello = sandbox.prepare(modules.host_calls()), sandbox.prepare(modules.hello())
    with_calls: list[float] = []
    without: list[float] = []
    for _ in range(repeats + 1):  # the first of each warms up; not counted
        for compiled, samples in ((calls, with_calls), (hello, without)):
            started = time.perf_counter()
            result = sandbox.run(compiled, RunRequest(), SERVICE_LIMITS)
            samples.append(time.perf_counter() - started)
            assert result.outcome.value == "success", result
    spent = statistics.median(with_calls[1:]) - statistics.median(without[1:])
    return spent / modules.HOST_CALLS


def _metering(sandbox: Sandbox, repeats: int) -> tuple[float, float]:
    """Median guest time of SHA-256 over 1 MiB without and with a fuel budget, each run of
    one followed by one of the other, so a slow patch of the machine falls on both."""
    data = random.Random(7).randbytes(1024 * 1024)
    expected = hashlib.sha256(data).hexdigest().encode() + b"\n"
    budgeted = replace(SERVICE_LIMITS, max_fuel=2**63)
    wasm = modules.sha256()
    kinds: list[tuple[CompiledModule, Limits, list[float]]] = [
        (sandbox.prepare(wasm, limits), limits, []) for limits in (SERVICE_LIMITS, budgeted)
    ]
    for _ in range(repeats + 1):  # the first of each warms the caches; it is not counted
        for compiled, limits, durations in kinds:
            result = sandbox.run(compiled, RunRequest(stdin=data), limits)
            assert result.stdout == expected, result
            assert (result.fuel_consumed is not None) == limits.metered
            durations.append(result.duration_seconds)
    unmetered, metered = (statistics.median(durations[1:]) for _, _, durations in kinds)
    return unmetered, metered


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
