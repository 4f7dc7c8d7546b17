"""Section 6: a soak at 50 concurrent clients mixing hello, echo, CPU-bound, timeout and
output-flood modules; every answer checked, every usage row counted, RSS watched.

Load from wrk (bench/wrk/execute.lua picks a module per request by weight and checks each
answer). Afterwards the server is stopped gracefully (its usage log flushed) and the rows
in the database are counted against the runs the server reports in its metrics.
"""

from __future__ import annotations

import hashlib
import random
import signal
import statistics
import sys
import threading
import time

from bench import modules
from bench.support import (
    BenchServer,
    Context,
    Mix,
    Section,
    count_usage_rows,
    multipart,
    prepare_database,
    run_wrk,
)

CONNECTIONS = 50
# A run that spins is stopped after this long: short, so timeouts stay part of the mix
# instead of holding every worker thread.
TIMEOUT_SECONDS = "1"
WARM_UP_SHARE = 0.2


def mixes() -> list[Mix]:
    cpu_input = random.Random(11).randbytes(64 * 1024)
    marker = b"echo-soak-marker\n" * 64

    def mix(weight: int, wasm: bytes, expect: str, stdin: bytes | None = None) -> Mix:
        fields = [("wasm", "module.wasm", wasm)]
        if stdin is not None:
            fields.append(("input", "input", stdin))
        content_type, body = multipart(fields)
        return Mix(weight, content_type, body, expect)

    return [
        mix(50, modules.hello(), "Hello, WasmWiz!"),
        mix(20, modules.echo(), "echo-soak-marker", marker),
        mix(25, modules.sha256(), hashlib.sha256(cpu_input).hexdigest(), cpu_input),
        mix(4, modules.flood(), '"status":"output_limit"'),
        mix(1, modules.spin(), '"status":"timeout"'),
    ]


def run(context: Context) -> Section:
    seconds = context.soak_seconds
    section = Section(f"6. Soak: {seconds:.0f} s at {CONNECTIONS} concurrent clients, mixed")
    var_dir, database_url = context.fresh_database("soak")
    account = prepare_database(database_url)
    server = BenchServer(var_dir, database_url, execution_timeout=TIMEOUT_SECONDS).start()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample_rss() -> None:
        began = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - began, server.rss_bytes()[0]))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    try:
        sampler.start()
        result = run_wrk(
            server.url,
            account,
            mixes(),
            connections=CONNECTIONS,
            seconds=seconds,
            directory=var_dir,
            threads=2,
        )
        stop.set()
        sampler.join()
        peak = server.rss_bytes()[1]
        executed = _settled_executions(server)
    finally:
        stop.set()
        exit_code = server.stop()
    rows = count_usage_rows(database_url, account.api_key_id)
    ok = result.statuses.get("200", 0)
    baseline, final = _rss_windows(samples, seconds)
    growth = (final - baseline) / baseline if baseline else 0.0

    section.row("requests answered", f"{result.requests:,} ({result.throughput:,.0f}/s)")
    section.row("HTTP statuses", ", ".join(f"{k}: {v:,}" for k, v in result.statuses.items()))
    section.row("unexpected answers or errors", str(result.errors + result.timeouts))
    if result.sample:
        section.row("first unexpected answer", result.sample[:200])
    section.row("runs the server finished (its metrics)", f"{executed:,}")
    section.row("usage rows in the database", f"{rows:,}")
    section.row("server exit code after SIGTERM", str(exit_code))
    section.row("peak RSS", f"{peak / 2**20:.0f} MiB")
    section.row(
        f"RSS after warm-up ({seconds * WARM_UP_SHARE:.0f} s) -> last fifth (medians)",
        f"{baseline / 2**20:.0f} MiB -> {final / 2**20:.0f} MiB ({growth:+.1%})",
    )
    unexpected = result.errors + result.timeouts
    # wrk abandons the requests in flight when its time is up; the server still runs
    # them, so it may have answered up to CONNECTIONS more than wrk counted.
    rows_complete = rows == executed and ok <= rows <= ok + CONNECTIONS
    section.target("no unexpected errors", unexpected == 0, f"{unexpected}")
    section.target(
        "no lost usage rows",
        # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean exit.
        rows_complete and exit_code in (0, -signal.SIGTERM),
        f"{rows:,} rows for {executed:,} runs ({ok:,} answered 200 to wrk)",
    )
    section.target("RSS growth after warm-up < 10%", growth < 0.10, f"{growth:+.1%}")
    section.figures = {
        "requests": result.requests,
        "throughput": result.throughput,
        "statuses": result.statuses,
        "unexpected": unexpected,
        "executed": executed,
        "usage_rows": rows,
        "exit_code": exit_code,
        "peak_rss": peak,
        "rss_after_warm_up": baseline,
        "rss_at_end": final,
        "rss_growth": growth,
    }
    return section


def _rss_windows(samples: list[tuple[float, int]], seconds: float) -> tuple[int, int]:
    """Median RSS just after warm-up, and over the last fifth of the soak.

    Medians of windows, not single samples: an output flood in flight holds a megabyte
    or two per request for a moment, so one sample says little about growth.
    """
    start = seconds * WARM_UP_SHARE
    after_warm_up = [rss for at, rss in samples if start <= at < start + seconds * 0.2]
    last = [rss for at, rss in samples if at >= seconds * 0.8]
    if not after_warm_up or not last:
        return 0, 0
    return int(statistics.median(after_warm_up)), int(statistics.median(last))


def _settled_executions(server: BenchServer) -> int:
    """The server's run count once the runs wrk abandoned have finished."""
    last = -1
    while True:
        current = server.executions_total()
        if current == last:
            return current
        last = current
        time.sleep(1.5)


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "soak", *sys.argv[1:]]))
