"""asyncio's event loop against uvloop under `wasmwiz serve`, side by side in one run.

    .venv/bin/python -m bench.event_loop [--rounds 2] [--seconds 6]

`wasmwiz serve` runs asyncio's own loop. This bench serves the same tree both ways, in
alternating rounds (a fresh server and database each time), and drives hello-world with
closed-loop wrk at 1, 50 and 200 clients, then with the timestamping client of
bench/fairness.py at 200 (all 200 connect and send at once; it reports the slowest first
request of a connection apart from the rest). What it showed is in docs/performance.md:
uvloop is a few per cent faster, and under load it leaves new connections in the accept
queue for seconds.

uvloop is a development dependency for this bench only (`pip install uvloop` elsewhere).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.fairness import closed_loop, little_wait
from bench.http import hello_mix
from bench.support import (
    BenchServer,
    ms,
    prepare_database,
    run_wrk,
    sqlite_url,
    workspace,
    wrk_available,
)

LOOP_ENV = "BENCH_EVENT_LOOP"
LOOPS = ("asyncio", "uvloop")
CLIENTS = (1, 50, 200)


def _serve(argv: Sequence[str]) -> int:
    """`wasmwiz serve` on the event loop named in BENCH_EVENT_LOOP."""
    import uvicorn

    from wasmwiz.cli.main import main

    run = uvicorn.run

    def run_on_loop(*args: Any, **options: Any) -> None:
        run(*args, **(options | {"loop": os.environ[LOOP_ENV]}))

    uvicorn.run = run_on_loop  # cli/serve.py calls it as uvicorn.run
    return main(["serve", *argv])


class LoopServer(BenchServer):
    command_module = "bench.event_loop"
    command_prefix = ("--serve",)


def measure(loop: str, seconds: float) -> list[str]:
    os.environ[LOOP_ENV] = loop
    mix = [hello_mix()]
    with workspace() as directory:
        database_url = sqlite_url(directory)
        account = prepare_database(database_url)
        server = LoopServer(directory, database_url, max_queued_executions="256").start()
        try:
            run_wrk(server.url, account, mix, connections=10, seconds=3, directory=directory)
            cells = []
            for clients in CLIENTS:
                result = run_wrk(
                    server.url,
                    account,
                    mix,
                    connections=clients,
                    seconds=seconds,
                    directory=directory,
                )
                ratio = result.p99 / little_wait(result, clients)
                cells += [f"{result.throughput:,.0f}", ms(result.p50), f"{ratio:.1f}x"]
                time.sleep(1)  # the requests wrk left in flight are answered
            looped = closed_loop(server.url, account, mix[0], 200, seconds)
            wait = 200 / looped.throughput
            cells += [f"{looped.p99 / wait:.1f}x", ms(looped.first_max), ms(looped.later_p99)]
            return cells
        finally:
            server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--serve"]:
        return _serve(args_list[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.event_loop", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args(args_list)
    if not wrk_available():
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    if importlib.util.find_spec("uvloop") is None:
        print("uvloop is not installed (pip install uvloop)", file=sys.stderr)
        return 2
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    print(
        "wrk at 1, 50 and 200 clients: req/s, p50, p99 / Little's-law wait; then the "
        "timestamping client at 200: p99 / wait, slowest first request, p99 of the rest"
    )
    header = ["loop", *[f"{c}c {k}" for c in CLIENTS for k in ("req/s", "p50", "p99/w")]]
    header += ["raw p99/w", "1st max", "later p99"]
    widths = [9] + [11] * (len(header) - 1)
    print("".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for _ in range(args.rounds):
        for loop in LOOPS:
            cells = [loop, *measure(loop, args.seconds)]
            print("".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
