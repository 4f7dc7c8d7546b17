"""What bounding request heads costs: three HTTP protocols side by side on one hello-world.

    .venv/bin/python -m bench.parsers [--seconds 5] [--rounds 3] [--connections 50]

Each protocol serves the same minimal ASGI app (a 15-byte text answer) in its own
process: uvicorn's httptools protocol as shipped, ours (http_common/transport.py, the
head counted and timed), and uvicorn's h11 protocol (the pure-Python parser that honours
`h11_max_incomplete_event_size`). wrk loads each in turn, round after round, so the
machine's drift falls on all three alike; the table keeps each one's median round.
The app is trivial on purpose: what differs is only the protocol, and an execution
would hide it. docs/performance.md keeps the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from bench.support import free_port
from wasmwiz.http_common.transport import BoundedHttpToolsProtocol

PROTOCOLS = ("httptools", "bounded", "h11")
BODY = b"Hello, WasmWiz!"


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"15")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def serve(protocol: str, port: int) -> None:
    uvicorn.run(
        hello_app,
        host="127.0.0.1",
        port=port,
        http=BoundedHttpToolsProtocol if protocol == "bounded" else protocol,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )


def start(protocol: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.parsers", "--serve", protocol, str(port)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, timeout=1)
            return process, url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the {protocol} server did not start") from None
            time.sleep(0.05)


def wrk(url: str, connections: int, seconds: float) -> tuple[float, float]:
    """Requests per second and p99 latency in ms."""
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate_line = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99_line = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    if rate_line is None or p99_line is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    rate = float(rate_line.group(1))
    p99, unit = p99_line.groups()
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, float(p99) * scale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parsers", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--serve", nargs=2, metavar=("PROTOCOL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    servers = {name: start(name) for name in PROTOCOLS}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in PROTOCOLS}
    try:
        for _, url in servers.values():
            wrk(url, args.connections, 1)  # warm-up
        for _ in range(args.rounds):
            for name, (_, url) in servers.items():
                results[name].append(wrk(url, args.connections, args.seconds))
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=10)
    base = statistics.median(rate for rate, _ in results["httptools"])
    print(
        f"hello-world, wrk -t1 -c{args.connections}, {args.rounds} rounds of "
        f"{args.seconds:g} s each (median round)"
    )
    print(f"{'protocol':<12}{'req/s':>10}{'vs httptools':>14}{'p99 ms':>10}")
    for name in PROTOCOLS:
        rate = statistics.median(r for r, _ in results[name])
        p99 = statistics.median(p for _, p in results[name])
        print(f"{name:<12}{rate:>10.0f}{rate / base:>13.2f}x{p99:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
