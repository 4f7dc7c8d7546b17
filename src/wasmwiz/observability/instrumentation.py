"""OpenTelemetry's instrumentation of FastAPI, SQLAlchemy, Redis and httpx, on the app's
own tracer provider: each library instrumented per object (this app, its engine, its
clients), never by patching the library for the whole process.

The instrumentations are imported only when tracing is on: together they took some 80 ms
to import here, which a server with tracing off need not spend at every start."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.util._decorator import _agnosticcontextmanager
from sqlalchemy.ext.asyncio import AsyncEngine

from wasmwiz.observability.tracing import Tracing

# Metrics are Prometheus's here (observability/metrics.py): the instrumentations' own
# meters go nowhere.
_NO_METRICS = NoOpMeterProvider()


def instrument_app(app: FastAPI, tracing: Tracing) -> None:
    """A server span per request, outside every middleware of ours, continuing a caller's
    `traceparent`; no spans of their own for the ASGI messages sent and received."""
    if tracing.provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracing.provider,
        meter_provider=_NO_METRICS,
        exclude_spans=["receive", "send"],
    )


def instrument_engine(engine: AsyncEngine, tracing: Tracing) -> None:
    """A span per statement. SQLAlchemyInstrumentor().instrument() would patch
    create_engine for the process, once; this engine's events are enough."""
    if tracing.provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_version

    tracer = _ChildSpansOnly(
        tracing.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqlalchemy_version)
    )
    connections = _NO_METRICS.get_meter("sqlalchemy").create_up_down_counter("db.connections")
    EngineTracer(tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]


def instrument_redis(client: Any, tracing: Tracing) -> None:
    """A span per Redis command (or pipeline) of `client`, a redis.asyncio.Redis."""
    if tracing.provider is None or client is None:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(
        client, tracer_provider=_ChildSpansOnlyProvider(tracing.provider)
    )


def instrument_httpx(client: httpx.AsyncClient, tracing: Tracing) -> None:
    """A client span per request of `client`, which carries `traceparent` to the server."""
    if tracing.provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(
        client, tracer_provider=tracing.provider, meter_provider=_NO_METRICS
    )


class _ChildSpansOnly(trace.Tracer):
    """Spans only inside a trace. A statement or a Redis command outside any span (the job
    and webhook sweeps every few seconds, a health check's ping) would otherwise each be a
    trace of its own, drowning the requests' traces."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> trace.Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self._tracer.start_span(name, context, *args, **kwargs)

    @_agnosticcontextmanager
    def start_as_current_span(
        self, name: str, context: Any = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        if not trace.get_current_span(context).get_span_context().is_valid:
            yield trace.INVALID_SPAN
            return
        with self._tracer.start_as_current_span(name, context, *args, **kwargs) as span:
            yield span


class _ChildSpansOnlyProvider(trace.TracerProvider):
    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _ChildSpansOnly(self._provider.get_tracer(*args, **kwargs))
