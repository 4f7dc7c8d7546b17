"""Sections 2 and 3: the HTTP API on a live server, and its ratio to the raw engine.

Load comes from wrk (a compiled, event-driven generator; one thread, keep-alive, closed
loop: N connections each send their next request when the last one is answered).
"""

from __future__ import annotations

import os
import sys

from bench import modules
from bench.support import (
    BenchServer,
    Context,
    Mix,
    Section,
    WrkResult,
    ms,
    multipart,
    prepare_database,
    run_wrk,
)

CONCURRENCY = (10, 50, 200)
# Room to queue every client at 200 concurrent; the default (64) would answer the rest
# with 503 server_busy at once, which is right for a real deployment but not measured here.
SERVER_SETTINGS = {"max_queued_executions": "256"}


def hello_mix() -> Mix:
    content_type, body = multipart([("wasm", "hello.wasm", modules.hello())])
    return Mix(1, content_type, body, "Hello, WasmWiz!")


def run(context: Context) -> Section:
    engine = context.sections["engine"].figures
    section = Section("2. HTTP API, same module, live server (wrk, keep-alive)")
    var_dir, database_url = context.fresh_database("http")
    account = prepare_database(database_url)
    server = BenchServer(var_dir, database_url, **SERVER_SETTINGS).start()
    mix = [hello_mix()]
    results: dict[int, WrkResult] = {}
    try:

        def load(connections: int, seconds: float) -> WrkResult:
            return run_wrk(
                server.url,
                account,
                mix,
                connections=connections,
                seconds=seconds,
                directory=var_dir,
            )

        load(10, context.seconds(3.0))  # warm-up: compile, caches, pools
        for connections in (1, *CONCURRENCY):
            results[connections] = load(connections, context.seconds(10.0))
    finally:
        server.stop()

    section.row("server", "1 process (wasmwiz serve), SQLite, memory rate limiter")
    section.row("concurrency", "req/s      p50        p95        p99        errors")
    for connections, result in results.items():
        section.row(
            f"  {connections}",
            f"{result.throughput:<10,.0f} {ms(result.p50):<10} {ms(result.p95):<10} "
            f"{ms(result.p99):<10} {result.errors}",
        )
    floor = engine["floor_seconds"]
    engine_throughput = engine["throughput_cores"]
    c1, c50 = results[1], results[50]
    section.figures = {
        str(connections): {
            "throughput": result.throughput,
            "p50": result.p50,
            "p95": result.p95,
            "p99": result.p99,
            "errors": result.errors,
            "statuses": result.statuses,
        }
        for connections, result in results.items()
    }
    if context.redis_url:
        _several_workers(context, section, mix, results[50])
    ratios = Section("3. HTTP API over the raw engine (the number we drive down)")
    latency_ratio = c1.p50 / floor
    throughput_share = c50.throughput / engine_throughput
    tail_ratio = c50.p99 / floor
    ratios.row("p50 at concurrency 1 / engine run", f"{latency_ratio:.1f}x")
    ratios.row("req/s at 50 / engine runs/s on all cores", f"{throughput_share:.0%}")
    ratios.row("p99 at 50 / engine run", f"{tail_ratio:.1f}x")
    for name, several in section.figures.items():
        if name.startswith("50_workers_"):
            share = several["throughput"] / engine_throughput
            ratios.row(f"req/s at 50, {name[11:]} workers / engine on all cores", f"{share:.0%}")
    ratios.target(
        "latency at concurrency 1 <= 10x the engine run",
        latency_ratio <= 10,
        f"{ms(c1.p50)} vs {ms(floor)}: {latency_ratio:.1f}x",
    )
    ratios.target(
        "throughput at 50 >= 30% of the engine's, zero errors, p99 < 50x the engine run",
        throughput_share >= 0.30 and c50.errors == 0 and tail_ratio < 50,
        f"{throughput_share:.0%}, {c50.errors} errors, p99 {tail_ratio:.0f}x",
    )
    ratios.figures = {
        "latency_ratio": latency_ratio,
        "throughput_share": throughput_share,
        "tail_ratio": tail_ratio,
    }
    context.sections["ratios"] = ratios
    return section


def _several_workers(context: Context, section: Section, mix: list[Mix], one: WrkResult) -> None:
    """The same load at 50 on `--workers N` (one per core), limits shared through Redis."""
    assert context.redis_url is not None
    workers = os.cpu_count() or 1
    var_dir, database_url = context.fresh_database("http-workers")
    account = prepare_database(database_url)
    server = BenchServer(
        var_dir,
        database_url,
        workers=str(workers),
        rate_limit_backend="redis",
        redis_url=context.redis_url,
        **SERVER_SETTINGS,
    ).start()
    try:
        run_wrk(
            server.url,
            account,
            mix,
            connections=10,
            seconds=context.seconds(3.0),
            directory=var_dir,
        )
        result = run_wrk(
            server.url,
            account,
            mix,
            connections=50,
            seconds=context.seconds(10.0),
            directory=var_dir,
        )
    finally:
        server.stop()
    section.row(
        f"  50, {workers} workers + Redis",
        f"{result.throughput:<10,.0f} {ms(result.p50):<10} {ms(result.p95):<10} "
        f"{ms(result.p99):<10} {result.errors}",
    )
    section.figures[f"50_workers_{workers}"] = {
        "throughput": result.throughput,
        "p50": result.p50,
        "p99": result.p99,
        "errors": result.errors,
        "speedup_over_one_process": result.throughput / one.throughput,
    }


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "engine,http", *sys.argv[1:]]))
