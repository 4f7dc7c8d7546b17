"""What every benchmark section shares: a server process, an account, wrk, and figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
from sqlalchemy import func, select

from wasmwiz.persistence import Database
from wasmwiz.persistence.migrate import upgrade
from wasmwiz.persistence.models import SubscriptionTier, UsageLog
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.api_keys import ApiKeyService

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "wrk" / "execute.lua"
SALT = "bench-salt-" + "x" * 40
# Limits high enough that the rate limiter admits everything: the gate still runs on
# every request (that cost is measured), it just never refuses.
UNLIMITED = 1_000_000_000


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


@dataclass
class Target:
    name: str
    holds: bool
    detail: str


@dataclass
class Section:
    """One section's table rows, its targets and its raw figures (for --json)."""

    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def row(self, label: str, value: str) -> None:
        self.rows.append((label, value))

    def target(self, name: str, holds: bool, detail: str) -> None:
        self.targets.append(Target(name, holds, detail))

    def print(self) -> None:
        print(f"\n## {self.title}")
        width = max((len(label) for label, _ in self.rows), default=0)
        for label, value in self.rows:
            print(f"  {label.ljust(width)}  {value}")
        for target in self.targets:
            mark = "HOLDS" if target.holds else "MISSED"
            print(f"  [{mark}] {target.name}: {target.detail}")


@dataclass(frozen=True)
class BenchAccount:
    api_key: str
    api_key_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def prepare_database(database_url: str, *, max_concurrent: int = UNLIMITED) -> BenchAccount:
    """Migrate, and create a user on a tier the rate limiter never refuses (but for its
    concurrent runs, given `max_concurrent`)."""
    upgrade(database_url)
    return asyncio.run(_create_account(database_url, max_concurrent))


async def _create_account(database_url: str, max_concurrent: int) -> BenchAccount:
    database = Database(database_url)
    tier_name = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        async with database.session() as session:
            session.add(
                SubscriptionTier(
                    name=tier_name,
                    requests_per_minute=UNLIMITED,
                    requests_per_day=UNLIMITED,
                    max_concurrent_executions=max_concurrent,
                    max_fuel=None,
                    max_stored_modules=UNLIMITED,
                    max_stored_module_bytes=UNLIMITED,
                    max_queued_jobs=UNLIMITED,
                )
            )
            await session.flush()
            user = await AccountService().create_user(
                session, f"{tier_name}@bench.invalid", tier=tier_name
            )
            created = await ApiKeyService(SALT).create(session, user.id, name="bench")
            await session.commit()
    finally:
        await database.dispose()
    return BenchAccount(created.plaintext, created.key.id)


def count_usage_rows(database_url: str, api_key_id: uuid.UUID) -> int:
    async def count() -> int:
        database = Database(database_url)
        try:
            async with database.session() as session:
                statement = select(func.count()).where(UsageLog.api_key_id == api_key_id)
                return int(await session.scalar(statement) or 0)
        finally:
            await database.dispose()

    return asyncio.run(count())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The transport alone: uvicorn as `wasmwiz serve` runs it (the same HTTP protocol class
# and event loop), with an app that reads the whole body and answers at once. What a
# request costs beyond it is what WasmWiz adds. Given `fastapi`, the app is instead one
# bare FastAPI route that reads the body and answers a small JSON object: the floor of any
# service built on the same framework, before it does anything of its own.
DRAIN_APP = """
import sys, uvicorn
from wasmwiz.http_common.transport import BoundedHttpToolsProtocol
# One large block taken and freed first, as a server's first large body does: glibc then
# raises its mmap threshold, and later 256 KiB reads reuse heap pages instead of each
# being mapped and faulted in afresh (about 10 ms of page faults per 10 MiB body, in a
# process that has not yet seen a large free).
bytearray(4 * 1024 * 1024)
async def drain(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 400, "headers": []})
    await send({"type": "http.response.body", "body": b'{"code": "drained"}'})
def bare_fastapi():
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    app = FastAPI()
    @app.post("/")
    async def read_body(request: Request) -> JSONResponse:
        return JSONResponse({"size": len(await request.body())})
    return app
uvicorn.run(
    bare_fastapi() if sys.argv[2:] == ["fastapi"] else drain, port=int(sys.argv[1]),
    http=BoundedHttpToolsProtocol, loop="asyncio", log_level="warning",
)
"""


def drain_server(*, fastapi: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    """DRAIN_APP in a process of its own, once it answers: (the process, its URL).
    `fastapi`: the bare FastAPI route instead of the ASGI app."""
    port = free_port()
    mode = ["fastapi"] if fastapi else []
    process = subprocess.Popen([sys.executable, "-c", DRAIN_APP, str(port), *mode])
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url)
            return process, url
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError("the drain app did not start")


class BenchServer:
    """`wasmwiz serve` as its own process, the way it runs in production."""

    # `python -m <command_module> <command_prefix...> --port N`
    command_module = "wasmwiz.cli.main"
    command_prefix: tuple[str, ...] = ("serve",)

    def __init__(self, var_dir: Path, database_url: str, **settings: str) -> None:
        self.var_dir = var_dir
        self.database_url = database_url
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "API_SALT": SALT,
            "VAR_DIR": str(self.var_dir),
            "LOG_LEVEL": "INFO",
            # The account's budget for calls other than runs, at its largest: the bench
            # measures the server, and section 9 alone submits and polls jobs hundreds
            # of times a minute from one account.
            "API_REQUESTS_PER_MINUTE": "1000000",
            "API_REQUESTS_PER_DAY": "100000000",
            **{name.upper(): value for name, value in self.settings.items()},
        }
        if not self.command_module.startswith("wasmwiz."):
            # A bench module wrapping serve (it runs from var_dir): the checkout goes last
            # on the path, so a tree put first (bench/untrusted_body.py) still wins.
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [env.get("PYTHONPATH"), str(BENCH_DIR.parent)])
            )
        log = (self.var_dir / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                self.command_module,
                *self.command_prefix,
                "--port",
                str(self.port),
            ],
            env=env,
            cwd=self.var_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.var_dir / 'server.log'}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not become healthy")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> int:
        """SIGTERM: drain, flush the usage log, exit."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def rss_bytes(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the server process, from /proc."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
        return values["VmRSS"], values["VmHWM"]

    def executions_total(self) -> int:
        """Runs the server finished, by its own metrics."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("wasmwiz_executions_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)


@contextmanager
def workspace(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wasmwiz-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'bench.db'}"


def multipart(
    fields: Sequence[tuple[str, str | None, bytes]],
) -> tuple[str, bytes]:
    """(content type, body) of a multipart/form-data request, built once and reused."""
    boundary = uuid.uuid4().hex
    body = bytearray()
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(body)


@dataclass(frozen=True)
class Mix:
    """One kind of request in a wrk run: how often, the body, and what a right answer has."""

    weight: int
    content_type: str
    body: bytes
    expect: str


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50: float
    p95: float
    p99: float
    max: float
    statuses: dict[str, int]
    socket_errors: int
    timeouts: int
    unexpected: int
    sample: str

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        """Anything but a 200 with the expected content, plus transport errors."""
        return self.unexpected + self.socket_errors


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    account: BenchAccount,
    mixes: Sequence[Mix],
    *,
    connections: int,
    seconds: float,
    directory: Path,
    threads: int = 1,
) -> WrkResult:
    """Drive POST /api/v1/execute with wrk (closed loop: `connections` clients, keep-alive)."""
    args = [account.api_key]
    for index, mix in enumerate(mixes):
        body_path = directory / f"wrk-body-{index}.bin"
        body_path.write_bytes(mix.body)
        args += [str(mix.weight), str(body_path), mix.content_type, mix.expect]
    command = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        url + "/api/v1/execute",
        "--",
        *args,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            figures = json.loads(line.removeprefix("WRK_JSON "))
            break
    else:
        raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
    return WrkResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50=figures["p50_us"] / 1e6,
        p95=figures["p95_us"] / 1e6,
        p99=figures["p99_us"] / 1e6,
        max=figures["max_us"] / 1e6,
        statuses={str(k): v for k, v in figures["statuses"].items()},
        socket_errors=figures["connect"] + figures["read"] + figures["write"],
        timeouts=figures["timeout"],
        unexpected=figures["unexpected"],
        sample=figures["sample"],
    )


@dataclass
class Context:
    """What a run of the benchmarks shares across sections."""

    quick: bool
    directory: Path
    database_url: str | None = None
    soak_seconds: float = 60.0
    redis_url: str | None = None
    sections: dict[str, Section] = field(default_factory=dict)

    def seconds(self, full: float, quick: float = 1.0) -> float:
        return quick if self.quick else full

    def count(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def fresh_database(self, name: str) -> tuple[Path, str]:
        """A var dir for a server, and a database URL: the given one, or a new SQLite file."""
        var_dir = self.directory / name
        var_dir.mkdir(parents=True, exist_ok=True)
        return var_dir, self.database_url or sqlite_url(var_dir)
