"""Where a closed-loop client's tail is spent: inside the server process, or outside it.

    .venv/bin/python -m bench.server_side_tail [--seconds 6] [--clients 50 200]

Runs `wasmwiz serve` (one process, as in production) with two clocks on its HTTP
protocol, installed by this module's `--serve` mode before the server starts. For every
request on a keep-alive connection the server records:

- inside: from the first byte of the request read off the socket to the response handed
  to the transport (parsing, queueing for the event loop and the sandbox, the run);
- between: from the previous response on that connection to this request's first byte
  read, which holds the client's own turnaround, the kernel's delivery both ways and the
  event loop's delay in getting to the socket.

Then closed-loop wrk drives hello-world at each client count and the script prints wrk's
figures beside the server's. A request as wrk times it starts after its connection's
previous response left the server and ends after its own response left it, so its
latency is at most `between + inside` plus the delivery of the response and wrk's own
time to read it. When wrk's p99 is well above the server's `between + inside`, the rest
was spent outside the server process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.http import hello_mix
from bench.support import (
    BenchServer,
    ms,
    percentile,
    prepare_database,
    run_wrk,
    sqlite_url,
    workspace,
    wrk_available,
)

RECORD_ENV = "BENCH_TAIL_RECORD"


def _serve(argv: Sequence[str]) -> int:
    """`wasmwiz serve` with the two clocks; SIGUSR1 writes what they hold and clears it."""
    from wasmwiz.cli.main import main
    from wasmwiz.http_common.transport import BoundedHttpToolsProtocol as Protocol

    record_path = Path(os.environ[RECORD_ENV])
    records: dict[str, list[float]] = {"inside": [], "between": []}
    data_received = Protocol.data_received
    on_response_complete = Protocol.on_response_complete

    def timed_data_received(self: Any, data: bytes) -> None:
        if getattr(self, "_bench_first_byte", None) is None:
            self._bench_first_byte = now = time.perf_counter()
            answered = getattr(self, "_bench_answered", None)
            if answered is not None:
                records["between"].append(now - answered)
        data_received(self, data)

    def timed_response_complete(self: Any) -> None:
        now = time.perf_counter()
        first_byte = getattr(self, "_bench_first_byte", None)
        if first_byte is not None:
            records["inside"].append(now - first_byte)
        self._bench_first_byte = None
        self._bench_answered = now
        on_response_complete(self)

    def dump(_signal: int, _frame: object) -> None:
        record_path.write_text(json.dumps(records))
        for samples in records.values():
            samples.clear()

    Protocol.data_received = timed_data_received  # type: ignore[method-assign]
    Protocol.on_response_complete = timed_response_complete  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, dump)
    return main(["serve", *argv])


class TracedServer(BenchServer):
    command_module = "bench.server_side_tail"
    command_prefix = ("--serve",)

    def records(self) -> dict[str, list[float]]:
        """What the server's clocks hold since the last call (and clears them)."""
        assert self.process is not None
        path = self.var_dir / "tail-records.json"
        path.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not path.exists() or not path.read_text().endswith("}"):
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not write its records")
            time.sleep(0.05)
        records: dict[str, list[float]] = json.loads(path.read_text())
        return records


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--serve"]:
        return _serve(args_list[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.server_side_tail", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args(args_list)
    if not wrk_available():
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with workspace() as directory:
        database_url = sqlite_url(directory)
        account = prepare_database(database_url)
        os.environ[RECORD_ENV] = str(directory / "tail-records.json")
        server = TracedServer(directory, database_url, max_queued_executions="256").start()
        mix = [hello_mix()]
        try:
            run_wrk(server.url, account, mix, connections=10, seconds=2, directory=directory)
            server.records()
            header = (
                f"{'clients':>8}{'req/s':>8}{'wait':>11}{'wrk p99':>11}{'wrk max':>11}"
                f"{'inside p99':>12}{'max':>11}{'between p99':>13}{'max':>11}"
            )
            print(header)
            for clients in args.clients:
                result = run_wrk(
                    server.url,
                    account,
                    mix,
                    connections=clients,
                    seconds=args.seconds,
                    directory=directory,
                )
                time.sleep(1)  # the requests wrk left in flight are answered
                records = server.records()
                wait = clients / result.throughput
                inside, between = records["inside"], records["between"]
                print(
                    f"{clients:>8}{result.throughput:>8,.0f}{ms(wait):>11}{ms(result.p99):>11}"
                    f"{ms(result.max):>11}{ms(percentile(inside, 99)):>12}"
                    f"{ms(max(inside)):>11}{ms(percentile(between, 99)):>13}"
                    f"{ms(max(between)):>11}"
                )
                print(
                    f"{'':8}p99 / wait: wrk {result.p99 / wait:.1f}x, in the server "
                    f"{percentile(inside, 99) / wait:.1f}x; {len(inside)} requests answered"
                )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
