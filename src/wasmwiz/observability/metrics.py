"""Every Prometheus metric, defined once, in a registry that belongs to one app."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


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
            "Fuel consumed per execution.",
            buckets=(1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10),
            registry=self.registry,
        )
        self.rejections = Counter(
            "wasmwiz_requests_refused_total",
            "Requests refused before running, by problem code.",
            ["code"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "wasmwiz_executions_in_flight",
            "Executions running now.",
            registry=self.registry,
        )
        self.queued = Gauge(
            "wasmwiz_executions_queued",
            "Executions waiting for a worker.",
            registry=self.registry,
        )
        self.cache_hits = Gauge(
            "wasmwiz_compile_cache_hits",
            "Compiled-module cache hits since start.",
            registry=self.registry,
        )
        self.cache_misses = Gauge(
            "wasmwiz_compile_cache_misses",
            "Compiled-module cache misses (compilations) since start.",
            registry=self.registry,
        )
        self.usage_pending = Gauge(
            "wasmwiz_usage_records_pending",
            "Usage records accepted but not yet written.",
            registry=self.registry,
        )
        self.usage_lag = Gauge(
            "wasmwiz_usage_write_lag_seconds",
            "Age of the oldest usage record not yet written.",
            registry=self.registry,
        )
