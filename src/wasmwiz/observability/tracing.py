"""Tracing with OpenTelemetry: the app's own tracer provider, off unless configured.

On when OTEL_TRACES_EXPORTER names an exporter (`otlp`, `console`), or when it is unset
and an OTLP endpoint is (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
off when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. Off, every tracer is
OpenTelemetry's no-op one and nothing is instrumented: a span costs a call that returns
the invalid span, and no trace id reaches the logs or the answers.

The provider is the app's, never installed as OpenTelemetry's global one: instrumentation
is handed it explicitly (observability/instrumentation.py), so apps built side by side (the
tests do) each trace into their own. Tests give `create_app` a span processor of their own
(the SDK's in-memory exporter), which turns tracing on with no exporter configured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

from opentelemetry import context, trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from wasmwiz import __version__
from wasmwiz.config import Settings, TracesExporter, TracesSampler
from wasmwiz.errors import WasmWizError

logger = logging.getLogger(__name__)

TRACER_NAME = "wasmwiz"
_OTLP_TRACES_PATH = "/v1/traces"
_PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    """The app's tracer provider (None when tracing is off) and the exporter it sends to,
    which starts with the app's lifespan (`start`) and is flushed at its end (`shutdown`)."""

    def __init__(
        self,
        provider: TracerProvider | None,
        exporter: SpanExporter | None = None,
        description: str = "",
    ) -> None:
        self._provider = provider
        self._exporter = exporter
        self._description = description

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    @property
    def provider(self) -> TracerProvider | None:
        return self._provider

    def tracer(self, name: str = TRACER_NAME) -> trace.Tracer | None:
        """The tracer services are given; None when tracing is off (they skip their spans
        altogether: even OpenTelemetry's no-op spans cost a context switch each)."""
        if self._provider is None:
            return None
        return self._provider.get_tracer(name, __version__)

    def start(self) -> None:
        """Begin exporting: the batch processor's thread starts here, in the serving
        process (after any fork), not when the app is built."""
        if self._provider is not None and self._exporter is not None:
            self._provider.add_span_processor(BatchSpanProcessor(self._exporter))
            self._exporter = None
            logger.info("tracing on: %s", self._description)

    def shutdown(self) -> None:
        """Export what is left and stop; spans ended after this are dropped."""
        if self._provider is not None:
            self._provider.shutdown()


def build_tracing(settings: Settings, *, span_processor: SpanProcessor | None = None) -> Tracing:
    """The app's tracing from the OTEL_* settings; `span_processor` (a test's) turns it on
    whatever they say."""
    exporter = _exporter(settings)
    if exporter is None and span_processor is None:
        return Tracing(None)
    resource = Resource.create(
        {SERVICE_NAME: settings.otel_service_name, SERVICE_VERSION: __version__}
    )
    provider = TracerProvider(
        sampler=sampler(settings.otel_traces_sampler, settings.otel_traces_sampler_arg),
        resource=resource,
        shutdown_on_exit=False,
    )
    if span_processor is not None:
        provider.add_span_processor(span_processor)
    target = getattr(exporter, "_endpoint", type(exporter).__name__)
    return Tracing(
        provider,
        exporter,
        f"spans to {target}, sampler {settings.otel_traces_sampler.value} "
        f"({settings.otel_traces_sampler_arg:g}), service {settings.otel_service_name}",
    )


def _exporter(settings: Settings) -> SpanExporter | None:
    if settings.otel_sdk_disabled:
        return None
    endpoint = settings.otel_exporter_otlp_traces_endpoint
    if endpoint is None and settings.otel_exporter_otlp_endpoint is not None:
        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + _OTLP_TRACES_PATH
    chosen = settings.otel_traces_exporter
    if chosen is None:
        chosen = TracesExporter.OTLP if endpoint is not None else TracesExporter.NONE
    if chosen is TracesExporter.CONSOLE:
        return ConsoleSpanExporter()
    if chosen is TracesExporter.OTLP:
        # Imported only when used: it brings `requests` and protobuf along.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Without an endpoint, the exporter's own default (http://localhost:4318/v1/traces);
        # headers, timeout, compression and certificates it reads from OTEL_EXPORTER_OTLP_*.
        return OTLPSpanExporter(endpoint=endpoint)
    return None


def sampler(name: TracesSampler, ratio: float) -> Sampler:
    """OTEL_TRACES_SAMPLER's sampler; `ratio` (OTEL_TRACES_SAMPLER_ARG) for the ratio ones."""
    match name:
        case TracesSampler.ALWAYS_ON:
            return ALWAYS_ON
        case TracesSampler.ALWAYS_OFF:
            return ALWAYS_OFF
        case TracesSampler.TRACEIDRATIO:
            return TraceIdRatioBased(ratio)
        case TracesSampler.PARENTBASED_ALWAYS_OFF:
            return ParentBased(ALWAYS_OFF)
        case TracesSampler.PARENTBASED_TRACEIDRATIO:
            return ParentBasedTraceIdRatio(ratio)
        case _:
            return ParentBased(ALWAYS_ON)


def traceresponse() -> str | None:
    """The current span as W3C Trace Context Level 2's `traceresponse` header (the same
    form as `traceparent`), or None with no span (tracing off)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{int(span_context.trace_flags):02x}"
    )


def carrier() -> dict[str, str]:
    """The current trace context as `traceparent` (and `tracestate`), to carry across the
    task queue; empty with no span."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers)
    return headers


@contextmanager
def continued(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Make the trace context in `headers` (from `carrier`) the current one."""
    if not headers:
        yield
        return
    token = context.attach(_PROPAGATOR.extract(headers))
    try:
        yield
    finally:
        context.detach(token)


def use_case_span(
    tracer: trace.Tracer | None,
    name: str,
    attributes: Attributes = None,
    links: Sequence[trace.Link] = (),
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
) -> AbstractContextManager[Span]:
    """A current span around a use case, or (no tracer: tracing is off) nothing at all,
    the invalid span standing in. A refusal (a WasmWizError: over quota, a module refused)
    is an answer, noted as `wasmwiz.refusal` with the span's status left unset; any other
    exception is recorded as the span's error."""
    if tracer is None:
        return _NOT_TRACED
    return _use_case_span(tracer, name, attributes, links, kind)


_NOT_TRACED = nullcontext(trace.INVALID_SPAN)


@contextmanager
def _use_case_span(
    tracer: trace.Tracer,
    name: str,
    attributes: Attributes,
    links: Sequence[trace.Link],
    kind: trace.SpanKind,
) -> Iterator[Span]:
    with tracer.start_as_current_span(
        name,
        attributes=attributes,
        links=links,
        kind=kind,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except WasmWizError as refusal:
            span.set_attribute("wasmwiz.refusal", str(refusal.code))
            raise
        except asyncio.CancelledError:
            span.set_attribute("wasmwiz.cancelled", True)
            raise
        except Exception as exc:
            fault(span, exc)
            raise


def fault(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
