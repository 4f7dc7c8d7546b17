"""Fair queueing under overload: tail latency against Little's law, before and after.

    .venv/bin/python -m bench.fairness            # ~2 minutes
    .venv/bin/python -m bench.fairness --quick    # ~30 seconds

Closed-loop wrk on hello-world at 50 and 200 clients. By Little's law a client's mean
time in the system is clients / throughput; the target is p99 <= 3x that, with 0
errors. A second load shares the server between two accounts, a bulk one with 190
clients and a light one with 10, and reports each one's latency: with one queue in
arrival order the light account waits behind the bulk one's requests, with turns by
account it does not.

"Before" and "after" are the same tree and server, measured side by side in one run:
before is SANDBOX_FAIR_QUEUE=false (the sandbox's single FIFO queue, as it was), after
the default (waiting runs served round-robin across accounts). Both servers queue up
to 256 runs (MAX_QUEUED_EXECUTIONS), so nothing is refused at 200 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.http import hello_mix
from bench.support import (
    BenchAccount,
    BenchServer,
    WrkResult,
    ms,
    prepare_database,
    run_wrk,
    sqlite_url,
    workspace,
    wrk_available,
)
from bench.support import _create_account as create_bench_account

CLIENTS = (50, 200)
TAIL_TARGET = 3.0
BULK_CLIENTS, LIGHT_CLIENTS = 190, 10
MODES = {"before (FIFO)": "false", "after (fair)": "true"}


@dataclass
class Figures:
    single: dict[int, WrkResult]
    bulk: WrkResult
    light: WrkResult


def little_wait(result: WrkResult, clients: int) -> float:
    """Mean time in the system by Little's law: clients / throughput."""
    return clients / result.throughput if result.throughput else float("inf")


def measure(directory: Path, fair: str, seconds: float) -> Figures:
    var_dir = directory / f"fair-{fair}"
    var_dir.mkdir()
    database_url = sqlite_url(var_dir)
    bulk_account = prepare_database(database_url)
    light_account = asyncio.run(create_bench_account(database_url))
    server = BenchServer(
        var_dir, database_url, max_queued_executions="256", sandbox_fair_queue=fair
    ).start()
    mix = [hello_mix()]
    try:

        def load(account: BenchAccount, clients: int, length: float) -> WrkResult:
            return run_wrk(
                server.url, account, mix, connections=clients, seconds=length, directory=var_dir
            )

        load(bulk_account, 10, 3.0)  # warm-up: compile, caches, pools
        single = {clients: load(bulk_account, clients, seconds) for clients in CLIENTS}
        shared: dict[str, WrkResult] = {}

        def run(name: str, account: BenchAccount, clients: int) -> None:
            shared[name] = load(account, clients, seconds)

        threads = [
            threading.Thread(target=run, args=("bulk", bulk_account, BULK_CLIENTS)),
            threading.Thread(target=run, args=("light", light_account, LIGHT_CLIENTS)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    return Figures(single, shared["bulk"], shared["light"])


def report(results: dict[str, Figures]) -> bool:
    holds = True
    print(f"{'':16}{'clients':>8}{'req/s':>9}{'p50':>10}{'p99':>10}{'mean wait':>11}"
          f"{'p99/wait':>10}{'errors':>8}")  # fmt: skip
    for mode, figures in results.items():
        for clients, result in figures.single.items():
            wait = little_wait(result, clients)
            ratio = result.p99 / wait
            print(
                f"{mode:16}{clients:>8}{result.throughput:>9,.0f}{ms(result.p50):>10}"
                f"{ms(result.p99):>10}{ms(wait):>11}{ratio:>9.1f}x{result.errors:>8}"
            )
            if mode.startswith("after"):
                holds = holds and ratio <= TAIL_TARGET and result.errors == 0
    print()
    print(f"two accounts at once: bulk {BULK_CLIENTS} clients, light {LIGHT_CLIENTS} clients")
    print(f"{'':16}{'account':>8}{'req/s':>9}{'p50':>10}{'p99':>10}{'errors':>8}")
    for mode, figures in results.items():
        for name, result in (("bulk", figures.bulk), ("light", figures.light)):
            print(
                f"{mode:16}{name:>8}{result.throughput:>9,.0f}{ms(result.p50):>10}"
                f"{ms(result.p99):>10}{result.errors:>8}"
            )
    for mode, figures in results.items():
        loads = [(f"{clients} clients", result) for clients, result in figures.single.items()]
        for name, result in [*loads, ("bulk", figures.bulk), ("light", figures.light)]:
            if result.errors:
                print(
                    f"errors, {mode} {name}: statuses {result.statuses}, socket errors "
                    f"{result.socket_errors}, first unexpected answer: {result.sample[:160]!r}"
                )
    print()
    print(f"target (after): p99 <= {TAIL_TARGET:.0f}x the mean wait at {CLIENTS}, 0 errors: "
          f"{'holds' if holds else 'does not hold'}")  # fmt: skip
    return holds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s per load instead of 10 s")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if not wrk_available():
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    seconds = 3.0 if args.quick else 10.0
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.2f} at start; {seconds:.0f} s per load")
    with workspace(keep=args.keep) as directory:
        results = {mode: measure(directory, fair, seconds) for mode, fair in MODES.items()}
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
