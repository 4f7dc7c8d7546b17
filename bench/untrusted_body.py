"""What taking in a 10 MiB body costs the server process, and hello-world beside it.

    .venv/bin/python -m bench.untrusted_body [--rounds 9] [--hello 300] [--tree DIR ...]

A real `wasmwiz serve` process per source tree (`--tree`: a `src` directory, e.g. an
export of an earlier commit, put first on the server's PYTHONPATH; by default this
checkout's), the trees taking turns round after round so the machine's drift falls on
all alike. Each round posts a 10 MiB module refused from its header (`invalid_wasm`:
taken in and hashed, never compiled), one a compile worker refuses (a type flood: also
written to a worker), and hello-world at one client. Costs are measured as
tests/security/test_untrusted_bytes.py does (CPU per thread from schedstat, peak RSS
from VmHWM after clear_refs) and split by thread: the event loop's, and the others
(the sandbox's worker thread hashes the module; the epoch ticker's ~13 ms a second is
left out). `--floor` adds an ASGI app that only reads and drops the body, under the
same HTTP protocol, its malloc in the state a server's reaches with its first large body:
what the socket and the parser cost before any of WasmWiz runs.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import mmap
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import httpx

from bench import modules
from bench.support import BenchServer, drain_server, multipart, prepare_database, sqlite_url
from wasmwiz.http_common.multipart import private_mapping

MiB = 1024 * 1024
LIMIT = 10 * MiB
_TYPES = (LIMIT - 64) // 3


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def control(variant: int) -> bytes:
    return b"\0asm\x02\0\0\0" + b"\0" * (LIMIT - 9) + bytes([variant % 256])


def type_flood(variant: int) -> bytes:
    body = _leb(_TYPES) + b"\x60\x00\x00" * _TYPES
    return b"\0asm\x01\0\0\0\x01" + _leb(len(body)) + body[:-1] + bytes([variant % 256])


def _threads(pid: int) -> dict[str, int]:
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            found[task.name] = int((task / "schedstat").read_text().split()[0])
    return found


def _minor_faults(pid: int) -> int:
    """Page faults the process took so far (minflt, /proc/<pid>/stat's tenth field)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7])


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


class Target:
    """One server (a source tree, or the drain-only app) and its samples."""

    def __init__(self, label: str, pid: int, url: str, headers: dict[str, str]) -> None:
        self.label, self.pid, self.url, self.headers = label, pid, url, headers
        before = _threads(pid)
        time.sleep(2)
        after = _threads(pid)
        # Threads busy with no request in flight (the epoch ticker), never the main one.
        self.background = {
            tid for tid, ns in after.items() if ns - before.get(tid, ns) > 10e6 and tid != str(pid)
        }
        self.samples: dict[str, list[tuple[int, int, int, int]]] = collections.defaultdict(list)
        self.hello: list[float] = []

    def measure(self, client: httpx.Client, case: str, data: bytes) -> None:
        content_type, body = multipart([("wasm", "m.wasm", data)])
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        rss_before = _status(self.pid, "VmRSS")
        before = _threads(self.pid)
        faults_before = _minor_faults(self.pid)
        response = client.post(
            self.url + "/api/v1/execute",
            headers={**self.headers, "Content-Type": content_type},
            content=body,
        )
        after = _threads(self.pid)
        faults = _minor_faults(self.pid) - faults_before
        peak = _status(self.pid, "VmHWM") - rss_before
        spent = {tid: ns - before.get(tid, 0) for tid, ns in after.items()}
        main = spent.get(str(self.pid), 0)
        others = sum(ns for tid, ns in spent.items() if tid not in self.background) - main
        if response.status_code < 400:
            raise RuntimeError(f"{self.label}: {case} was accepted")
        self.samples[case].append((main, others, peak, faults))


BUFFERS: dict[str, Callable[[], mmap.mmap]] = {
    "a fresh shared mapping (before)": lambda: mmap.mmap(-1, LIMIT),
    "a fresh private one": lambda: private_mapping(LIMIT),
    "a private one made populated": lambda: private_mapping(LIMIT, populate=True),
}


def buffer_write_ms(rounds: int) -> dict[str, tuple[float, float]]:
    """Writing 10 MiB in 256 KiB pieces (as multipart.py does) into each kind of buffer:
    medians in ms of CPU in this thread, (making the mapping, writing and unmapping)."""
    piece = b"x" * (256 * 1024)
    timings: dict[str, list[tuple[int, int]]] = {name: [] for name in BUFFERS}
    for _ in range(rounds):
        for name, make in BUFFERS.items():
            started = time.thread_time_ns()
            buffer = make()
            made = time.thread_time_ns()
            for _ in range(LIMIT // len(piece)):
                buffer.write(piece)
            buffer.close()
            timings[name].append((made - started, time.thread_time_ns() - made))
    return {
        name: (
            statistics.median(sample[0] for sample in samples) / 1e6,
            statistics.median(sample[1] for sample in samples) / 1e6,
        )
        for name, samples in timings.items()
    }


def hash_ms(rounds: int) -> tuple[float, float]:
    """SHA-256 (the module's cache key) and BLAKE3 over 10 MiB, one thread: median ms."""
    data = os.urandom(LIMIT)
    digests: dict[str, Callable[[], bytes]] = {
        "sha256": lambda: hashlib.sha256(data).digest(),
        "blake3": lambda: blake3.blake3(data).digest(),
    }
    timings: dict[str, list[float]] = {name: [] for name in digests}
    for _ in range(rounds):
        for name, digest in digests.items():
            started = time.process_time_ns()
            digest()
            timings[name].append((time.process_time_ns() - started) / 1e6)
    return statistics.median(timings["sha256"]), statistics.median(timings["blake3"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--hello", type=int, default=300)
    parser.add_argument("--tree", action="append", default=[])
    parser.add_argument("--floor", action="store_true")
    args = parser.parse_args()
    trees = args.tree or [str(Path(__file__).parents[1] / "src")]
    cases: dict[str, Callable[[int], bytes]] = {"control": control, "type flood": type_flood}
    hello_type, hello_body = multipart([("wasm", "hello.wasm", modules.hello())])
    with contextlib.ExitStack() as stack, httpx.Client(timeout=120) as client:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        targets = []
        for index, tree in enumerate(trees):
            var_dir = directory / str(index)
            var_dir.mkdir()
            database_url = sqlite_url(var_dir)
            account = prepare_database(database_url)
            path = os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")])
            os.environ["PYTHONPATH"] = path  # read by BenchServer.start
            server = BenchServer(var_dir, database_url, log_level="WARNING").start()
            os.environ["PYTHONPATH"] = path.split(os.pathsep, 1)[1]
            stack.callback(server.stop)
            for _ in range(20):
                client.post(
                    server.url + "/api/v1/execute",
                    headers={**account.headers, "Content-Type": hello_type},
                    content=hello_body,
                ).raise_for_status()
            targets.append(Target(tree, server.pid, server.url, account.headers))
        if args.floor:
            process, url = drain_server()
            stack.callback(process.wait)
            stack.callback(process.terminate)
            targets.append(Target("drain only (the transport)", process.pid, url, {}))
        for round_ in range(args.rounds):
            for target in targets:
                for case, make in cases.items():
                    target.measure(client, case, make(round_ + 1))
                if target.headers:
                    for _ in range(args.hello // args.rounds):
                        started = time.perf_counter()
                        client.post(
                            target.url + "/api/v1/execute",
                            headers={**target.headers, "Content-Type": hello_type},
                            content=hello_body,
                        ).raise_for_status()
                        target.hello.append(time.perf_counter() - started)
    print(
        f"medians of {args.rounds} rounds; CPU in ms (event loop + other threads), RSS in MiB, "
        "minor page faults of the server process; the event loop's worst round"
    )
    for target in targets:
        print(target.label)
        for case, samples in target.samples.items():
            main_ms, others_ms, peak, faults = (
                statistics.median(s[i] for s in samples) for i in range(4)
            )
            worst_ms = max(s[0] for s in samples) / 1e6
            print(
                f"  {case:11} {(main_ms + others_ms) / 1e6:5.1f} ms ({main_ms / 1e6:.1f} + "
                f"{others_ms / 1e6:.1f}), peak RSS {peak / MiB:.1f} MiB, "
                f"{faults:,.0f} page faults, event loop worst {worst_ms:.1f} ms"
            )
        if target.hello:
            print(f"  hello-world p50 {statistics.median(target.hello) * 1e3:.2f} ms")
    print("writing 10 MiB into the payload buffer (making it + writing and unmapping):")
    for name, (make_ms, write_ms) in buffer_write_ms(max(args.rounds, 9)).items():
        print(f"  {name:32} {make_ms:4.1f} + {write_ms:4.1f} ms")
    sha_ms, blake_ms = hash_ms(max(args.rounds, 9))
    print(f"hashing 10 MiB (one thread): SHA-256 {sha_ms:.1f} ms, BLAKE3 {blake_ms:.1f} ms")


if __name__ == "__main__":
    main()
