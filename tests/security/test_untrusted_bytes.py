"""Hostile modules near the 10 MiB limit cost the server process no more than any 10 MiB body.

Every check whose cost grows with a module (text conversion, the shape, validation,
compilation) runs in a compile worker. The server process only streams the body in
(into one buffer, http_common/multipart.py), hashes it and looks at 8 bytes. So each
hostile module, and a control of the same size that the server refuses from its header
alone, must peak under 16 MiB of RSS in the server (one copy of the module and the
transport's buffers; before the checks moved, a memory-section flood peaked at 370 MiB).
CPU: the issue's bound, 20 ms on the event loop's side, is asserted for the event loop's
thread (the server process's main thread) for each hostile module. Across all the
server's threads, taking in any 10 MiB body can cost that much by itself on a slow
machine (the socket and HTTP parser, the buffer's pages, SHA-256 on the sandbox's
thread; see docs/security.md), so what is held there is that a hostile module costs no
more than 20 ms beyond the control (before: seconds).

CPU is counted per thread from /proc/<pid>/task/*/schedstat (nanoseconds), leaving out
the threads that burn CPU while the server is idle (the epoch ticker, about 12 ms a
second here; the event loop's thread is always counted): their cost does not depend on
any request, and over a four-second compile its jitter alone would be larger than the
bound. The counted threads' own idle rate, measured over two quiet seconds, is taken
off each request in proportion to how long it took. Children (the compile workers) are
not the server process and are not counted. Peak RSS: /proc/<pid>/clear_refs resets the
high-water mark before each request, and VmHWM after it is the request's peak.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.fixtures.app import create_account, start_server_process
from tests.sandbox import wasm_builder
from wasmwiz.persistence.migrate import upgrade_async

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MiB = 1024 * 1024
LIMIT = 10 * MiB  # MAX_WASM_SIZE's default
CPU_BOUND_NS = 20_000_000
RSS_BOUND = 16 * MiB
REPEATS = 9  # the floor of nine: see `cost`
HEADER = b"\0asm\x01\0\0\0"
HELLO = (Path(__file__).parents[2] / "src/wasmwiz/examples/hello.wat").read_bytes()


def flood(section_id: int, entry: bytes) -> bytes:
    """One section filled with copies of `entry`, to just under the size limit."""
    count = (LIMIT - 64) // len(entry)
    return HEADER + wasm_builder.section(section_id, wasm_builder.vector([entry] * count))


def nested_wat() -> bytes:
    depth = (LIMIT - 100) // 9
    return b"(module (func " + b"(block " * depth + b")" * depth + b"))"


def folded_wat() -> bytes:
    unit = b"(block (nop))"
    return b'(module (func (export "_start") ' + unit * ((LIMIT - 100) // len(unit)) + b"))"


HOSTILE: dict[str, tuple[bytes, str]] = {
    "memory-section flood": (flood(5, b"\x00\x01"), "too_many_memories"),
    "type flood": (flood(1, b"\x60\x00\x00"), "too_many_types"),
    "import flood": (
        flood(2, b"\x16wasi_snapshot_preview1\x08fd_write\x00\x00"),
        "too_many_imports",
    ),
    "export flood": (flood(7, b"\x01a\x00\x00"), "too_many_exports"),
    "table flood": (flood(4, b"\x70\x00\x01"), "too_many_tables"),
    "deeply nested WAT": (nested_wat(), "function_too_large"),
    "huge folded-block WAT": (folded_wat(), "function_too_large"),
}
# Refused by the in-process look at the header: what any 10 MiB body costs to take in.
CONTROL = (b"\0asm\x02\0\0\0" + b"\0" * (LIMIT - 8), "invalid_wasm")


def varied(data: bytes, index: int) -> bytes:
    """`data` with its last byte changed (a text module: a trailing space added), so no
    cache of any kind can answer the repeat."""
    if data.startswith(b"("):
        return data + b" " * index if len(data) + index <= LIMIT else data[:-index] + b")"
    return data[:-1] + bytes([(data[-1] + index) % 256])


def thread_cpu_ns(pid: int) -> dict[str, int]:
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        # A thread may end between the listing and the read.
        with contextlib.suppress(OSError, ValueError, IndexError):
            times[task.name] = int((task / "schedstat").read_text().split()[0])
    return times


def status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


class Meter:
    """The server's CPU (request-driven threads) and peak RSS over one request."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        before = thread_cpu_ns(pid)
        time.sleep(2)
        after = thread_cpu_ns(pid)
        # Threads that burn 5 ms a second or more with no request in flight (the epoch
        # ticker: about 13). Never the main thread, which runs the event loop.
        self.background = {
            tid for tid, ns in after.items() if ns - before.get(tid, ns) > 10e6 and tid != str(pid)
        }
        # What the counted threads spend idle, per second (the event loop's timers, the
        # compile pool's watchers): a long compile in a worker would otherwise be charged
        # to the server for merely waiting on it. The event loop's own share is kept apart.
        self.idle_ns_per_second = (
            sum(ns - before.get(tid, ns) for tid, ns in after.items() if tid not in self.background)
            / 2
        )
        main = str(pid)
        self.loop_idle_ns_per_second = (after.get(main, 0) - before.get(main, 0)) / 2

    async def measure(self, client: httpx.AsyncClient, data: bytes) -> Cost:
        # Reset the RSS high-water mark (a write to procfs, which does not block).
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # noqa: ASYNC240
        rss_before = status_bytes(self.pid, "VmRSS")
        before = thread_cpu_ns(self.pid)
        started = time.monotonic()
        response = await client.post("/api/v1/execute", files={"wasm": ("m.wasm", data)})
        elapsed = time.monotonic() - started
        after = thread_cpu_ns(self.pid)
        peak = status_bytes(self.pid, "VmHWM") - rss_before
        cpu = sum(
            ns - before.get(tid, 0) for tid, ns in after.items() if tid not in self.background
        ) - int(self.idle_ns_per_second * elapsed)
        main = str(self.pid)
        loop_cpu = after[main] - before[main] - int(self.loop_idle_ns_per_second * elapsed)
        assert 400 <= response.status_code < 500, response.text
        return Cost(cpu, loop_cpu, peak, response.json()["code"])


class Cost(NamedTuple):
    cpu: int  # ns, every request-driven thread of the server process
    loop_cpu: int  # ns, the event loop's thread alone
    peak: int  # bytes of RSS above where the request began
    code: str


async def cost(meter: Meter, client: httpx.AsyncClient, data: bytes, code: str) -> Cost:
    """The least CPU (all threads, and the event loop's) and the median peak RSS of
    REPEATS requests with `data`, each refused with `code`. The least, for CPU: what a
    request costs is its floor, and a busy moment only adds to it (a median of three
    still moved by 20 ms between runs of one tree); parsing in the server would raise
    every sample, the floor included."""
    samples = []
    for index in range(1, REPEATS + 1):
        sample = await meter.measure(client, varied(data, index))
        assert sample.code == code
        samples.append(sample)
    return Cost(
        min(sample.cpu for sample in samples),
        min(sample.loop_cpu for sample in samples),
        int(statistics.median(sample.peak for sample in samples)),
        code,
    )


async def hello(client: httpx.AsyncClient) -> float:
    started = time.monotonic()
    response = await client.post("/api/v1/execute", files={"wasm": ("hello.wat", HELLO)})
    assert response.status_code == 200, response.text
    assert response.json()["output"] == "Hello, WasmWiz!\n"
    return time.monotonic() - started


async def test_hostile_modules_cost_the_server_no_more_than_any_big_body(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wasmwiz.db'}"
    await upgrade_async(url)
    hostile_account, hello_account = await create_account(url), await create_account(url)
    server = await asyncio.to_thread(start_server_process, tmp_path / "var", url)
    try:
        async with (
            httpx.AsyncClient(
                base_url=server.url, timeout=120, headers=hostile_account.headers
            ) as client,
            httpx.AsyncClient(
                base_url=server.url, timeout=120, headers=hello_account.headers
            ) as greeter,
        ):
            await hello(greeter)
            meter = await asyncio.to_thread(Meter, server.process.pid)
            control = await cost(meter, client, *CONTROL)
            costs = {name: await cost(meter, client, *case) for name, case in HOSTILE.items()}
            control_after = await cost(meter, client, *CONTROL)

            # All at once, while hello-world keeps being answered.
            posts = [
                client.post("/api/v1/execute", files={"wasm": ("m", data)})
                for data, _ in HOSTILE.values()
            ]
            storm = asyncio.gather(*posts)
            latencies = []
            while not storm.done():
                latencies.append(await hello(greeter))
                await asyncio.sleep(0.05)
            answers = await storm
    finally:
        server.stop()

    baseline_cpu = max(control.cpu, control_after.cpu)
    baseline_rss = max(control.peak, control_after.peak)
    report = {
        name: f"{c.cpu / 1e6:.1f} ms (event loop {c.loop_cpu / 1e6:.1f}), {c.peak / MiB:.1f} MiB"
        for name, c in costs.items()
    }
    print(
        f"control: {baseline_cpu / 1e6:.1f} ms (event loop {control.loop_cpu / 1e6:.1f}), "
        f"{baseline_rss / MiB:.1f} MiB; hostile: {report}"
    )
    assert baseline_rss < RSS_BOUND
    for name, c in costs.items():
        assert c.loop_cpu < CPU_BOUND_NS, name  # the bound, on the event loop
        assert c.cpu - baseline_cpu < CPU_BOUND_NS, name  # and nothing beyond any big body
        assert c.peak < RSS_BOUND, name
    assert [answer.json()["code"] for answer in answers] == [code for _, code in HOSTILE.values()]
    assert latencies
    assert max(latencies) < 2.0
