"""Every Prometheus metric, defined once, in a registry that belongs to one app."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True, slots=True)
class Sources:
    """Read at scrape time from the running app's parts; each returns a number."""

    in_flight: Callable[[], float]
    capacity: Callable[[], float]
    queued: Callable[[], float]
    cache_hits: Callable[[], float]
    cache_misses: Callable[[], float]
    cache_bytes: Callable[[], float]
    compile_worker_crashes: Callable[[], Mapping[str, float]]  # by signal
    usage_pending: Callable[[], float]
    usage_lag: Callable[[], float]
    usage_written: Callable[[], float]
    usage_write_failures: Callable[[], float]
    db_pool_size: Callable[[], float]
    db_pool_checked_out: Callable[[], float]
    db_pool_overflow: Callable[[], float]
    ready: Callable[[], float]
    rate_limiter_errors: Callable[[], float]
    task_queue_depth: Callable[[], Mapping[str, float]]  # by queue name
    password_hashes_running: Callable[[], float] = lambda: 0
    password_hashes_peak: Callable[[], float] = lambda: 0
    password_hashes_refused: Callable[[], float] = lambda: 0
    password_hashes_completed: Callable[[], float] = lambda: 0


class _Sampled(Collector):
    """Values owned by other components (the sandbox, the recorder, the pool), sampled
    when scraped, so they are right whichever server (the app's or METRICS_PORT) asks."""

    def __init__(self) -> None:
        self.sources: Sources | None = None

    def collect(self) -> Iterator[Metric]:
        s = self.sources
        if s is None:
            return
        yield _gauge("wasmwiz_executions_in_flight", "Executions running now.", s.in_flight)
        yield _gauge(
            "wasmwiz_executions_capacity",
            "Executions that may run at once (MAX_CONCURRENT_EXECUTIONS).",
            s.capacity,
        )
        yield _gauge("wasmwiz_executions_queued", "Executions waiting for a worker.", s.queued)
        yield _counter(
            "wasmwiz_compile_cache_hits", "Compiled-module cache hits since start.", s.cache_hits
        )
        yield _counter(
            "wasmwiz_compile_cache_misses",
            "Compiled-module cache misses (compilations) since start.",
            s.cache_misses,
        )
        yield _gauge(
            "wasmwiz_compile_cache_bytes", "Memory held by compiled modules.", s.cache_bytes
        )
        crashes = CounterMetricFamily(
            "wasmwiz_compile_worker_crashes",
            "Compile workers that died of a signal their limits do not explain (a security "
            "event: see docs/security.md), by the signal (`exit`: exited on its own).",
            labels=["signal"],
        )
        for signal, count in sorted(s.compile_worker_crashes().items()):
            crashes.add_metric([signal], count)
        yield crashes
        yield _gauge(
            "wasmwiz_usage_records_pending",
            "Usage records accepted but not yet written.",
            s.usage_pending,
        )
        yield _gauge(
            "wasmwiz_usage_write_lag_seconds",
            "Age of the oldest usage record not yet written.",
            s.usage_lag,
        )
        yield _counter(
            "wasmwiz_usage_records_written", "Usage records written since start.", s.usage_written
        )
        yield _counter(
            "wasmwiz_usage_write_failures",
            "Failed usage-log batch writes (retried) since start.",
            s.usage_write_failures,
        )
        yield _gauge("wasmwiz_db_pool_size", "Connections the database pool keeps.", s.db_pool_size)
        yield _gauge(
            "wasmwiz_db_pool_checked_out",
            "Database connections in use now.",
            s.db_pool_checked_out,
        )
        yield _gauge(
            "wasmwiz_db_pool_overflow",
            "Connections open beyond the pool size (negative: unused capacity).",
            s.db_pool_overflow,
        )
        yield _gauge(
            "wasmwiz_ready", "1 when ready for traffic, 0 while starting or draining.", s.ready
        )
        yield _counter(
            "wasmwiz_rate_limiter_errors",
            "Rate-limiter and compile-budget calls their backend (Redis) failed to answer "
            "since start.",
            s.rate_limiter_errors,
        )
        depth = GaugeMetricFamily(
            "wasmwiz_task_queue_depth",
            "Jobs and webhook deliveries waiting in the task queue, measured every 5 s "
            "(shared by the replicas on Redis).",
            labels=["queue"],
        )
        for queue, waiting in s.task_queue_depth().items():
            depth.add_metric([queue], waiting)
        yield depth
        yield _gauge(
            "wasmwiz_password_hashes_running",
            "Password hashes and checks running now (at most PASSWORD_HASH_THREADS).",
            s.password_hashes_running,
        )
        yield _gauge(
            "wasmwiz_password_hashes_peak",
            "The most password hashes and checks that ran at once since start.",
            s.password_hashes_peak,
        )
        yield _counter(
            "wasmwiz_password_hashes_refused",
            "Password hashes refused with 429 try_later (queue full) since start.",
            s.password_hashes_refused,
        )
        yield _counter(
            "wasmwiz_password_hashes",
            "Password hashes and checks done since start.",
            s.password_hashes_completed,
        )


def _gauge(name: str, documentation: str, source: Callable[[], float]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=source())


def _counter(name: str, documentation: str, source: Callable[[], float]) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=source())


class Metrics:
    """Labels are bounded: route templates, status codes, outcomes, tiers and limit names."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wasmwiz_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "wasmwiz_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.executions = Counter(
            "wasmwiz_executions_total",
            "Executions by outcome and tier.",
            ["outcome", "tier"],
            registry=self.registry,
        )
        self.execution_duration = Histogram(
            "wasmwiz_execution_duration_seconds",
            "Wall time of the guest run.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.execution_fuel = Histogram(
            "wasmwiz_execution_fuel",
            "Fuel consumed per execution with a fuel budget (others are not metered).",
            buckets=(1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10),
            registry=self.registry,
        )
        self.result_cache = Counter(
            "wasmwiz_result_cache_lookups_total",
            "Lookups in the result cache of deterministic runs: `hit` answered without a "
            "run, `miss` ran, `error` ran because the cache could not answer.",
            ["result"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "wasmwiz_requests_refused_total",
            "Requests refused before running, by problem code.",
            ["code"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "wasmwiz_jobs_total",
            "Jobs by what happened to them: `submitted`, `finished`, `failed`, `cancelled`, "
            "`requeued` (a dead run's job queued again), `expired` (its result removed), "
            "`enqueue_failed` (kept, but the queue refused its message: the sweep sends it).",
            ["event"],
            registry=self.registry,
        )
        # Each event counted from 0 at start, so its first occurrence is an increase that
        # rate() and increase() see (WasmWizJobQueueStalled reads finished and failed).
        for event in (
            "submitted",
            "finished",
            "failed",
            "cancelled",
            "requeued",
            "expired",
            "enqueue_failed",
        ):
            self.jobs.labels(event)
        self.usage_pruned = Counter(
            "wasmwiz_usage_records_pruned_total",
            "Usage records deleted by the retention job.",
            registry=self.registry,
        )
        self._sampled = _Sampled()
        self.registry.register(self._sampled)

    def watch(self, sources: Sources) -> None:
        """Sample these from now on (the lifespan calls this once its parts exist)."""
        self._sampled.sources = sources


def start_metrics_server(
    registry: CollectorRegistry, *, host: str, port: int
) -> Callable[[], None]:
    """Serve `registry` alone on its own port (METRICS_PORT); returns a function to stop it."""
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
