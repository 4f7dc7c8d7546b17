"""Section 9: jobs through the queue, against the same runs made synchronously.

Side by side in one run, in interleaved rounds, with real `wasmwiz serve` processes on the
bench's database (--database-url, else a fresh SQLite file):

- Throughput: N jobs of hello-world, then of a ~10 ms module, submitted by CLIENTS
  concurrent clients (`POST /api/v1/jobs`), timed from the first submit to the last job
  finished (its row's `finished_at`); at 1 replica on the SQLite queue, at 1 replica on
  Redis, and at 2 replicas sharing one Redis queue and the database (those two need
  --redis-url, and 2 replicas a database other than SQLite). For reference, the same N
  runs as `POST /api/v1/execute` from the same clients, at 1 and at 2 replicas.
- Where the time goes: CPU seconds of the server processes, of PostgreSQL's and Redis's
  processes and of this client over each configuration's rounds, per job (from /proc).
- Latency of one job on an idle server (nothing submitted for IDLE_SECONDS before it),
  submit to finished, split at its row's `created_at` and `started_at`: on the SQLite
  queue and on Redis.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import select

from bench import modules
from bench.support import (
    BenchAccount,
    BenchServer,
    Context,
    Section,
    ms,
    multipart,
    prepare_database,
)
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import Job

CLIENTS = 8
HELLO_OUTPUT = "Hello, WasmWiz!\n"
_TICK = os.sysconf("SC_CLK_TCK")
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Workload:
    name: str
    body: tuple[str, bytes]
    output: str


@dataclass
class Setup:
    """One way of serving: its servers (clients spread over them) and its measurements."""

    name: str
    servers: list[BenchServer]
    rates: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def add(self, key: str, rate: float, cpu: dict[str, float], count: int) -> None:
        self.rates.setdefault(key, []).append(rate)
        spent = self.cpu.setdefault(key, {})
        for name, seconds in cpu.items():
            spent[name] = spent.get(name, 0.0) + seconds
        self.jobs[key] = self.jobs.get(key, 0) + count

    def rate(self, key: str) -> float:
        return statistics.median(self.rates[key])

    def cpu_per_job(self, key: str) -> dict[str, float]:
        return {name: seconds / self.jobs[key] for name, seconds in self.cpu[key].items()}


# ---- CPU from /proc: what each process spent, whoever else shares the machine


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class CpuMeter:
    """CPU seconds by group: the servers, PostgreSQL's processes (a connection's backend
    is a process), Redis, and this process (the client, and its polling)."""

    def __init__(self, servers: Sequence[BenchServer]) -> None:
        self._servers = [server.pid for server in servers]

    def _groups(self) -> dict[str, list[int]]:
        return {
            "server": self._servers,
            "postgres": _pids_named("postgres"),
            "redis": _pids_named("redis-server"),
        }

    def snapshot(self) -> dict[str, dict[int, float]]:
        taken = {
            group: {pid: _process_cpu(pid) for pid in pids}
            for group, pids in self._groups().items()
        }
        usage = resource.getrusage(resource.RUSAGE_SELF)
        taken["client"] = {0: usage.ru_utime + usage.ru_stime}
        return taken

    def since(self, before: dict[str, dict[int, float]]) -> dict[str, float]:
        """Seconds spent since `before` (a backend that exited in between is not counted)."""
        after = self.snapshot()
        return {
            group: sum(seconds - before[group].get(pid, 0.0) for pid, seconds in pids.items())
            for group, pids in after.items()
        }


# ---- the client


async def _post_all(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    account: BenchAccount,
    workload: Workload,
    count: int,
    path: str,
) -> list[httpx.Response]:
    """`count` POSTs from CLIENTS concurrent clients, client k on urls[k % len(urls)]."""
    content_type, content = workload.body
    headers = {**account.headers, "Content-Type": content_type}
    responses: list[httpx.Response] = []
    remaining = iter(range(count))

    async def one_client(url: str) -> None:
        for _ in remaining:
            responses.append(await client.post(url + path, headers=headers, content=content))

    await asyncio.gather(*(one_client(urls[k % len(urls)]) for k in range(CLIENTS)))
    return responses


async def _ended(database: Database, ids: Sequence[uuid.UUID], seconds: float) -> list[Job]:
    """The jobs' rows once none is queued or running (polled)."""
    deadline = time.monotonic() + seconds
    while True:
        async with database.session() as session:
            rows = list(await session.scalars(select(Job).where(Job.id.in_(ids))))
        if len(rows) == len(ids) and all(row.finished_at is not None for row in rows):
            return rows
        if time.monotonic() > deadline:
            states = [row.state for row in rows]
            raise RuntimeError(f"jobs still not ended after {seconds:.0f} s: {states}")
        await asyncio.sleep(_POLL_SECONDS)


def _accepted(responses: Sequence[httpx.Response]) -> list[uuid.UUID]:
    ids = []
    for response in responses:
        if response.status_code != 202:
            raise RuntimeError(f"a job was refused: {response.status_code} {response.text[:300]}")
        ids.append(uuid.UUID(response.json()["id"]))
    return ids


async def _jobs_round(
    client: httpx.AsyncClient,
    database: Database,
    setup: Setup,
    account: BenchAccount,
    workload: Workload,
    count: int,
) -> tuple[float, list[Job]]:
    """Seconds from the first submit to the last job's `finished_at`, and the rows."""
    started = time.time()  # wall clock: the rows' times are the servers' wall clock
    ids = _accepted(await _post_all(client, setup.urls, account, workload, count, "/api/v1/jobs"))
    rows = await _ended(database, ids, 300)
    failed = [row for row in rows if row.state != "finished"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not finish: {failed[0].error_detail}")
    last = max(row.finished_at for row in rows if row.finished_at is not None)
    return last.timestamp() - started, rows


async def _sync_round(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    account: BenchAccount,
    workload: Workload,
    count: int,
) -> float:
    started = time.perf_counter()
    responses = await _post_all(client, urls, account, workload, count, "/api/v1/execute")
    elapsed = time.perf_counter() - started
    for response in responses:
        if response.status_code != 200 or response.json()["output"] != workload.output:
            raise RuntimeError(f"unexpected answer: {response.status_code} {response.text[:300]}")
    return elapsed


async def _check_result(
    client: httpx.AsyncClient, url: str, account: BenchAccount, job: Job, output: str
) -> None:
    response = await client.get(f"{url}/api/v1/jobs/{job.id}", headers=account.headers)
    result = response.json()["result"]
    if result is None or result["status"] != "success" or result["output"] != output:
        raise RuntimeError(f"a job's result is not the run's: {response.text[:300]}")


@dataclass
class Latency:
    total: list[float] = field(default_factory=list)
    accepted: list[float] = field(default_factory=list)  # submit → row written
    waiting: list[float] = field(default_factory=list)  # row written → claimed
    running: list[float] = field(default_factory=list)  # claimed → finished

    def median(self, name: str) -> float:
        samples: list[float] = getattr(self, name)
        return statistics.median(samples)


async def _idle_latency(
    client: httpx.AsyncClient,
    database: Database,
    server: BenchServer,
    account: BenchAccount,
    workload: Workload,
    samples: int,
    idle: float,
) -> Latency:
    latency = Latency()
    content_type, content = workload.body
    headers = {**account.headers, "Content-Type": content_type}
    for _ in range(samples):
        await asyncio.sleep(idle)
        submitted = time.time()
        response = await client.post(server.url + "/api/v1/jobs", headers=headers, content=content)
        (row,) = await _ended(database, _accepted([response]), 60)

        def since(moment: datetime | None, start: float) -> float:
            assert moment is not None
            return moment.timestamp() - start

        latency.total.append(since(row.finished_at, submitted))
        latency.accepted.append(since(row.created_at, submitted))
        latency.waiting.append(since(row.started_at, row.created_at.timestamp()))
        assert row.started_at is not None
        latency.running.append(since(row.finished_at, row.started_at.timestamp()))
    return latency


# ---- the section


@dataclass
class Plan:
    rounds: int
    counts: dict[str, int]
    latency_samples: int
    idle_seconds: float


async def _measure(
    plan: Plan,
    database_url: str,
    account: BenchAccount,
    workloads: Sequence[Workload],
    job_setups: Sequence[Setup],
    sync_setups: Sequence[Setup],
    latency_servers: dict[str, BenchServer],
) -> dict[str, Latency]:
    database = Database(database_url)
    # Idle connections dropped before uvicorn's 5 s: one the server closes as it is reused
    # (the clients sit idle while a round's jobs run) fails without an answer.
    limits = httpx.Limits(
        max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2, keepalive_expiry=2.0
    )
    try:
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            for setup in {id(s): s for s in [*job_setups, *sync_setups]}.values():
                for workload in workloads:  # compiled, and each key's first lookup done
                    for url in setup.urls:
                        await _sync_round(client, [url], account, workload, 1)
            for round_number in range(plan.rounds):
                for workload in workloads:
                    count = plan.counts[workload.name]
                    for setup in job_setups:
                        meter = CpuMeter(setup.servers)
                        before = meter.snapshot()
                        seconds, rows = await _jobs_round(
                            client, database, setup, account, workload, count
                        )
                        setup.add(
                            f"jobs {workload.name}", count / seconds, meter.since(before), count
                        )
                        if round_number == 0:
                            await _check_result(
                                client, setup.urls[0], account, rows[0], workload.output
                            )
                    for setup in sync_setups:
                        meter = CpuMeter(setup.servers)
                        before = meter.snapshot()
                        seconds = await _sync_round(client, setup.urls, account, workload, count)
                        setup.add(
                            f"sync {workload.name}", count / seconds, meter.since(before), count
                        )
            hello = workloads[0]
            return {
                name: await _idle_latency(
                    client,
                    database,
                    server,
                    account,
                    hello,
                    plan.latency_samples,
                    plan.idle_seconds,
                )
                for name, server in latency_servers.items()
            }
    finally:
        await database.dispose()


def run(context: Context) -> Section:
    section = Section("9. Jobs through the queue, against synchronous runs")
    var_dir, database_url = context.fresh_database("jobs")
    account = prepare_database(database_url)
    plan = Plan(
        rounds=context.count(3, 1),
        counts={"hello": context.count(200, 20), "10 ms": context.count(200, 20)},
        latency_samples=context.count(15, 3),
        idle_seconds=context.seconds(1.0, 0.3),
    )
    hello = Workload("hello", multipart([("wasm", "hello.wasm", modules.hello())]), HELLO_OUTPUT)
    busy = Workload("10 ms", multipart([("wasm", "busy.wasm", modules.busy())]), "")
    redis = context.redis_url
    shared_database = not database_url.startswith("sqlite")
    servers: list[BenchServer] = []

    def serve(name: str, **settings: str) -> BenchServer:
        directory = var_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        server = BenchServer(directory, database_url, **settings)
        servers.append(server)
        return server.start()

    run_id = uuid.uuid4().hex[:12]
    try:
        sqlite_queue = Setup("1 replica, SQLite queue", [serve("sqlite-queue")])
        job_setups, sync_setups = [sqlite_queue], [sqlite_queue]
        latency_servers = {"SQLite queue": sqlite_queue.servers[0]}
        if redis is not None:
            one = Setup(
                "1 replica, Redis queue",
                [serve("redis-one", redis_url=redis, queue_name=f"bench-{run_id}-one")],
            )
            job_setups, sync_setups = [sqlite_queue, one], [one]
            latency_servers["Redis queue"] = one.servers[0]
            if shared_database:
                shared = {"redis_url": redis, "queue_name": f"bench-{run_id}-two"}
                two = Setup(
                    "2 replicas, one Redis queue",
                    [serve("replica-a", **shared), serve("replica-b", **shared)],
                )
                job_setups.append(two)
                sync_setups.append(two)
        latency = asyncio.run(
            _measure(
                plan,
                database_url,
                account,
                [hello, busy],
                job_setups,
                sync_setups,
                latency_servers,
            )
        )
    finally:
        for server in servers:
            server.stop()

    _report(section, plan, job_setups, sync_setups, latency, redis, shared_database)
    return section


def _report(
    section: Section,
    plan: Plan,
    job_setups: Sequence[Setup],
    sync_setups: Sequence[Setup],
    latency: dict[str, Latency],
    redis: str | None,
    shared_database: bool,
) -> None:
    figures: dict[str, object] = {}
    for workload, count in plan.counts.items():
        label = f"{count} x {workload}, {CLIENTS} clients"
        for setup in job_setups:
            rate = setup.rate(f"jobs {workload}")
            section.row(f"jobs: {label}, {setup.name}", f"{rate:.0f}/s")
            figures[f"jobs {workload}, {setup.name}"] = rate
        for setup in sync_setups:
            rate = setup.rate(f"sync {workload}")
            section.row(f"sync: {label}, {_replicas(setup)}", f"{rate:.0f}/s")
            figures[f"sync {workload}, {_replicas(setup)}"] = rate
        for setup in sync_setups:
            jobs, sync = setup.rate(f"jobs {workload}"), setup.rate(f"sync {workload}")
            section.row(f"  jobs / sync, {workload}, {setup.name}", f"{jobs / sync:.2f}")
            figures[f"jobs / sync, {workload}, {setup.name}"] = jobs / sync
        if len(sync_setups) == 2:
            one, two = sync_setups
            for kind in ("jobs", "sync"):
                ratio = two.rate(f"{kind} {workload}") / one.rate(f"{kind} {workload}")
                section.row(f"  2 replicas / 1, {kind}, {workload}", f"{ratio:.2f}")
                figures[f"2 replicas / 1, {kind} {workload}"] = ratio
        if len(job_setups) >= 2:
            sqlite, one = job_setups[:2]
            ratio = one.rate(f"jobs {workload}") / sqlite.rate(f"jobs {workload}")
            section.row(f"  Redis queue / SQLite queue, jobs, {workload}", f"{ratio:.2f}")
    for setup in {id(s): s for s in [*job_setups, *sync_setups]}.values():
        for key in setup.cpu:
            spent = setup.cpu_per_job(key)
            shown = ", ".join(
                f"{name} {seconds * 1000:.1f} ms" for name, seconds in spent.items() if seconds
            )
            where = setup.name if key.startswith("jobs") else _replicas(setup)
            section.row(f"CPU per run: {key}, {where}", shown or "(none measured)")
            figures[f"cpu per run: {key}, {setup.name}"] = spent
    for name, samples in latency.items():
        section.row(
            f"one job on an idle server, {name} (p50 of {len(samples.total)})",
            f"{ms(samples.median('total'))} (accepted {ms(samples.median('accepted'))}, "
            f"waiting {ms(samples.median('waiting'))}, "
            f"claimed to finished {ms(samples.median('running'))})",
        )
        figures[f"idle latency, {name}"] = {
            part: samples.median(part) for part in ("total", "accepted", "waiting", "running")
        }
    if redis is None:
        section.row("Redis queue and 2 replicas", "not measured (no --redis-url)")
    elif not shared_database:
        section.row("2 replicas", "not measured (SQLite: give --database-url postgresql://…)")
    section.figures = figures


def _replicas(setup: Setup) -> str:
    return "1 replica" if len(setup.servers) == 1 else f"{len(setup.servers)} replicas"


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "jobs", *sys.argv[1:]]))
