"""The spans of a sandbox job (`wasmwiz.prepare`, `wasmwiz.run`), drawn after it ended from
the times the sandbox noted (sandbox.stages): the sandbox knows nothing of traces, and the
job's worker thread carries no trace context."""

from __future__ import annotations

import time

from opentelemetry import trace

from wasmwiz.observability.tracing import fault
from wasmwiz.sandbox import ModuleRefused, Prepared, RunResult, StageTimes

_NS_PER_MS = 1_000_000


def draw_stages(
    tracer: trace.Tracer,
    stages: StageTimes,
    result: RunResult | None,
    failure: BaseException | None = None,
) -> None:
    """Children of the current span for the stages that started: how the module was
    prepared (and how long the job waited for a worker), and how the run ended."""
    if not stages.prepare_started_ns:
        return  # refused before it reached a worker: the parent span says why
    prepare = tracer.start_span(
        "wasmwiz.prepare",
        start_time=stages.prepare_started_ns,
        attributes={
            "wasmwiz.prepare.source": stages.prepared.value,
            "wasmwiz.prepare.cache_hit": stages.prepared is Prepared.MEMORY,
            "wasmwiz.sandbox.queued_ms": (stages.prepare_started_ns - stages.submitted_ns)
            / _NS_PER_MS
            if stages.submitted_ns
            else 0.0,
        },
    )
    if stages.prepared is Prepared.COMPILED:
        prepare.set_attribute("wasmwiz.compile.cpu_seconds", stages.compile_cpu_seconds)
    if result is not None:
        prepare.set_attributes(
            {
                "wasmwiz.module.sha256": result.module_sha256,
                "wasmwiz.module.size": result.module_size,
            }
        )
    if failure is not None and not stages.run_started_ns:
        _failed(prepare, failure)
    prepare.end(end_time=stages.prepare_ended_ns or time.time_ns())
    if not stages.run_started_ns:
        return
    run = tracer.start_span("wasmwiz.run", start_time=stages.run_started_ns)
    if result is not None:
        run.set_attributes(
            {
                # A guest's trap or timeout is the run's outcome, not a fault of ours: the
                # span's status stays unset, and the outcome says how it ended.
                "wasmwiz.run.outcome": result.outcome.value,
                "wasmwiz.run.memory_peak_bytes": result.memory_peak_bytes,
                "wasmwiz.run.duration_ms": result.duration_seconds * 1000,
                "wasmwiz.run.stdout_bytes": len(result.stdout),
                "wasmwiz.run.stderr_bytes": len(result.stderr),
            }
        )
        if result.exit_code is not None:
            run.set_attribute("wasmwiz.run.exit_code", result.exit_code)
        if result.fuel_consumed is not None:  # a run without a fuel budget is not metered
            run.set_attribute("wasmwiz.run.fuel_consumed", result.fuel_consumed)
    elif failure is not None:
        _failed(run, failure)
    run.end(end_time=stages.run_ended_ns or time.time_ns())


def _failed(span: trace.Span, failure: BaseException) -> None:
    if isinstance(failure, ModuleRefused):
        span.set_attribute("wasmwiz.refusal", str(failure.code))
    else:
        fault(span, failure)
