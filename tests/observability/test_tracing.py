"""Tracing over real HTTP: an execution's span tree (request, authentication, admission,
preparation, run, usage) in the SDK's in-memory exporter, the trace in the answer's
`traceresponse` and in the log lines, a caller's `traceparent` continued, sampling, jobs
and webhook deliveries in the submitting trace, and nothing at all when tracing is off."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text

from tests.api import wat
from tests.api.test_batches import batch as run_batch
from tests.api.test_jobs import submit as submit_job
from tests.api.webhook_receiver import Receiver, running_receiver
from tests.fixtures.app import Account, LiveServer, ServerFactory, ServerProcess, make_settings
from wasmwiz.observability.instrumentation import instrument_engine
from wasmwiz.observability.logging import JsonFormatter
from wasmwiz.observability.tracing import build_tracing
from wasmwiz.persistence import Database

pytestmark = pytest.mark.anyio

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Traced:
    """A server whose spans go to an in-memory exporter."""

    def __init__(self, server_factory: ServerFactory, **settings: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.server: LiveServer = server_factory(
            app_options={"span_processor": SimpleSpanProcessor(self.exporter)}, **settings
        )

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.url, timeout=30)

    async def spans_of(self, trace_id: int, *names: str, seconds: float = 10) -> list[ReadableSpan]:
        """The trace's spans, once it holds one of each of `names` (spans end after the
        answer is sent, and the usage write comes a moment later)."""
        deadline = time.monotonic() + seconds
        while True:
            spans = [
                span
                for span in self.exporter.get_finished_spans()
                if span.context is not None and span.context.trace_id == trace_id
            ]
            if {span.name for span in spans} >= set(names):
                return spans
            assert time.monotonic() < deadline, sorted(span.name for span in spans)
            await asyncio.sleep(0.02)


@contextmanager
def access_log() -> Iterator[list[dict[str, Any]]]:
    """The access log's lines as production writes them (JSON), parsed when the block ends."""
    formatted: list[str] = []
    parsed: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            formatted.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("wasmwiz.access")
    level = access.level
    access.setLevel(logging.INFO)
    access.addHandler(handler)
    try:
        yield parsed
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
        parsed.extend(json.loads(line) for line in formatted)


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    """Our spans and the instrumentations' HTTP ones by name, each once (the database's
    are many, and named by statement)."""
    named: dict[str, ReadableSpan] = {}
    for span in spans:
        if (span.attributes or {}).get("db.system") or "db.system.name" in (span.attributes or {}):
            continue
        assert span.name not in named, f"two spans named {span.name}"
        named[span.name] = span
    return named


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_of(response: httpx.Response) -> tuple[int, int, str]:
    """The answer's `traceresponse`: trace id, span id, flags."""
    version, trace_id, parent_id, flags = response.headers["traceresponse"].split("-")
    assert version == "00"
    return int(trace_id, 16), int(parent_id, 16), flags


async def execute(
    client: httpx.AsyncClient, account: Account, headers: dict[str, str] | None = None
) -> httpx.Response:
    response = await client.post(
        "/api/v1/execute",
        headers={**account.headers, **(headers or {})},
        files={"wasm": ("hello.wat", wat.HELLO.encode())},
    )
    assert response.status_code == 200, response.text
    return response


EXECUTION = (
    "POST /api/v1/execute",
    "wasmwiz.authenticate",
    "wasmwiz.execute",
    "wasmwiz.admission",
    "wasmwiz.prepare",
    "wasmwiz.run",
    "wasmwiz.usage.record",
)


async def test_one_execution_draws_its_span_tree_and_names_its_trace(
    server_factory: ServerFactory, account: Account
) -> None:
    traced = Traced(server_factory)
    with access_log() as lines:
        async with traced.client() as client:
            response = await execute(client, account)
            trace_id, server_span_id, flags = trace_of(response)
            spans = by_name(await traced.spans_of(trace_id, *EXECUTION))
            again = await execute(client, account)
            again_spans = by_name(await traced.spans_of(trace_of(again)[0], *EXECUTION))

    assert int(flags, 16) & 1  # sampled (and 2: a random trace id, Trace Context Level 2)
    body = response.json()
    request = spans["POST /api/v1/execute"]
    assert request.kind is SpanKind.SERVER
    assert request.parent is None
    assert span_id(request) == server_span_id
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/api/v1/execute"
    execute_span = spans["wasmwiz.execute"]
    # request -> authenticate, execute; execute -> admission -> prepare -> run -> usage.
    assert parent_of(spans["wasmwiz.authenticate"]) == server_span_id
    assert parent_of(execute_span) == server_span_id
    for child in ("wasmwiz.admission", "wasmwiz.prepare", "wasmwiz.run", "wasmwiz.usage.record"):
        assert parent_of(spans[child]) == span_id(execute_span), child
    order = [spans[name] for name in EXECUTION[1:] if name != "wasmwiz.execute"]
    starts = [span.start_time or 0 for span in order]
    assert starts == sorted(starts), [span.name for span in order]
    assert (spans["wasmwiz.prepare"].end_time or 0) <= (spans["wasmwiz.run"].start_time or 0)

    assert spans["wasmwiz.authenticate"].attributes == {
        "wasmwiz.tier": "pro",
        "wasmwiz.api_key.id": str(account.api_key_id),
    }
    admission = spans["wasmwiz.admission"].attributes or {}
    assert admission["wasmwiz.admission.admitted"] is True
    assert admission["wasmwiz.admission.cost"] == 1
    prepare = spans["wasmwiz.prepare"].attributes or {}
    assert prepare["wasmwiz.prepare.source"] == "compiled"  # a fresh server: a worker compiled
    assert prepare["wasmwiz.prepare.cache_hit"] is False
    # The worker's CPU time, in clock ticks (10 ms): a small module's may be 0.
    assert float(prepare["wasmwiz.compile.cpu_seconds"]) >= 0  # type: ignore[arg-type]
    assert prepare["wasmwiz.module.sha256"] == hashlib.sha256(wat.HELLO.encode()).hexdigest()
    run = spans["wasmwiz.run"].attributes or {}
    assert run["wasmwiz.run.outcome"] == "success"
    assert run["wasmwiz.run.exit_code"] == 0
    assert body["fuel_consumed"] is None
    assert "wasmwiz.run.fuel_consumed" not in run  # no fuel budget: not metered
    assert run["wasmwiz.run.memory_peak_bytes"] == body["memory_peak_bytes"] == 65536
    assert run["wasmwiz.run.stdout_bytes"] == len("Hello, WasmWiz!\n")
    assert (execute_span.attributes or {})["wasmwiz.execution.id"] == body["execution_id"]
    usage = spans["wasmwiz.usage.record"].attributes or {}
    assert usage["wasmwiz.execution.id"] == body["execution_id"]

    # The second run of the same bytes is prepared from the memory cache: no compile.
    again_prepare = again_spans["wasmwiz.prepare"].attributes or {}
    assert again_prepare["wasmwiz.prepare.source"] == "memory"
    assert again_prepare["wasmwiz.prepare.cache_hit"] is True
    assert "wasmwiz.compile.cpu_seconds" not in again_prepare

    # The recorder's batch write is a trace of its own, linked to the runs it wrote.
    deadline = time.monotonic() + 10
    record_span = span_id(spans["wasmwiz.usage.record"])
    while not any(
        link.context.span_id == record_span
        for span in traced.exporter.get_finished_spans()
        if span.name == "wasmwiz.usage.write"
        for link in span.links
    ):
        assert time.monotonic() < deadline, "no usage write linked to the run"
        await asyncio.sleep(0.05)

    # The access log's line names the trace and the request's span.
    [line] = [line for line in lines if line["request_id"] == response.headers["x-request-id"]]
    assert line["trace_id"] == f"{trace_id:032x}"
    assert line["span_id"] == f"{server_span_id:016x}"


async def test_a_callers_traceparent_is_continued(
    server_factory: ServerFactory, account: Account
) -> None:
    traced = Traced(server_factory)
    async with traced.client() as client:
        response = await execute(
            client,
            account,
            {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "tracestate": "vendor=1"},
        )
    trace_id, server_span_id, flags = trace_of(response)
    assert f"{trace_id:032x}" == CALLER_TRACE
    assert flags == "01"
    spans = by_name(await traced.spans_of(trace_id, *EXECUTION))
    request = spans["POST /api/v1/execute"]
    assert request.parent is not None
    assert request.parent.is_remote
    assert f"{request.parent.span_id:016x}" == CALLER_SPAN
    assert span_id(request) == server_span_id
    assert request.context is not None
    assert request.context.trace_state.get("vendor") == "1"


async def test_sampling_follows_the_caller_and_the_ratio(
    server_factory: ServerFactory, account: Account
) -> None:
    traced = Traced(
        server_factory,
        otel_traces_sampler="parentbased_traceidratio",
        otel_traces_sampler_arg=0.0,
    )
    async with traced.client() as client:
        unsampled = await execute(client, account)
        sampled = await execute(
            client, account, {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
        )
    # A root trace at ratio 0 is not recorded, but it has an id to answer and log.
    unsampled_trace, _, unsampled_flags = trace_of(unsampled)
    assert not int(unsampled_flags, 16) & 1
    # A caller's sampled trace is recorded (parent-based).
    assert trace_of(sampled)[2] == "01"
    await traced.spans_of(int(CALLER_TRACE, 16), *EXECUTION)
    assert not [
        span
        for span in traced.exporter.get_finished_spans()
        if span.context is not None and span.context.trace_id == unsampled_trace
    ]


async def test_tracing_is_off_by_default(
    live_server: LiveServer, client: httpx.AsyncClient, account: Account
) -> None:
    with access_log() as lines:
        response = await execute(
            client, account, {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
        )
    assert "traceresponse" not in response.headers
    [line] = lines
    assert "trace_id" not in line
    assert not build_tracing(live_server.settings).enabled


def test_the_otel_settings_choose_the_exporter(tmp_path: Path) -> None:
    def tracing(**settings: Any) -> Any:
        return build_tracing(make_settings(tmp_path, "sqlite:///unused.db", **settings))

    assert not tracing().enabled
    on = tracing(otel_exporter_otlp_endpoint="http://jaeger:4318/")
    assert on.enabled
    exporter = on._exporter
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://jaeger:4318/v1/traces"
    own = tracing(otel_exporter_otlp_traces_endpoint="http://collector:4318/traces")
    assert own._exporter._endpoint == "http://collector:4318/traces"
    assert tracing(otel_traces_exporter="otlp").enabled  # the exporter's default endpoint
    assert tracing(otel_traces_exporter="console").enabled
    assert not tracing(
        otel_exporter_otlp_endpoint="http://x:4318", otel_traces_exporter="none"
    ).enabled
    assert not tracing(otel_exporter_otlp_endpoint="http://x:4318", otel_sdk_disabled=True).enabled
    for exporting in (on, own):
        exporting.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


async def test_a_job_and_its_webhook_continue_the_submitting_trace(
    server_factory: ServerFactory, account: Account, receiver: Receiver
) -> None:
    traced = Traced(server_factory, webhook_allow_private_targets=True)
    async with traced.client() as client:
        secret = await client.get("/api/v1/webhooks/callback-secret", headers=account.headers)
        receiver.secrets["/callback"] = secret.json()["secret"]
        submitted = await submit_job(
            client, account, wat.ECHO, input="hi", callback_url=receiver.url("/callback")
        )
        assert submitted.status_code == 202, submitted.text
        [delivery] = await receiver.wait("/callback", 1)
    trace_id, server_span_id, _ = trace_of(submitted)
    spans = by_name(
        await traced.spans_of(
            trace_id,
            "POST /api/v1/jobs",
            "wasmwiz.job.submit",
            "wasmwiz.job.run",
            "wasmwiz.prepare",
            "wasmwiz.run",
            "wasmwiz.usage.write",
            "wasmwiz.webhook.deliver",
            "POST",  # the httpx client's span of the delivery
        )
    )
    submit = spans["wasmwiz.job.submit"]
    assert parent_of(submit) == server_span_id
    job_run = spans["wasmwiz.job.run"]
    assert job_run.kind is SpanKind.CONSUMER
    assert parent_of(job_run) == span_id(submit)
    assert (job_run.attributes or {})["wasmwiz.job.id"] == submitted.json()["id"]
    assert (job_run.attributes or {})["wasmwiz.run.outcome"] == "success"
    for child in ("wasmwiz.prepare", "wasmwiz.run", "wasmwiz.usage.write"):
        assert parent_of(spans[child]) == span_id(job_run), child
    deliver = spans["wasmwiz.webhook.deliver"]
    assert parent_of(deliver) == span_id(job_run)
    assert (deliver.attributes or {})["wasmwiz.webhook.succeeded"] is True
    assert (deliver.attributes or {})["http.response.status_code"] == 200
    assert parent_of(spans["POST"]) == span_id(deliver)
    # The receiver was told the trace: httpx's instrumentation sent `traceparent`.
    sent = {name.lower(): value for name, value in delivery.headers.items()}
    assert sent["traceparent"].split("-")[1] == f"{trace_id:032x}"


async def test_statements_outside_any_trace_make_no_spans(tmp_path: Path) -> None:
    """A sweep's query is no trace of its own; a request's is a child of its span."""
    exporter = InMemorySpanExporter()
    tracing = build_tracing(
        make_settings(tmp_path, "sqlite:///unused.db"),
        span_processor=SimpleSpanProcessor(exporter),
    )
    database = Database(f"sqlite:///{tmp_path / 'spans.db'}")
    instrument_engine(database.engine, tracing)
    try:
        async with database.session() as session:
            await session.execute(text("SELECT 1"))
        assert exporter.get_finished_spans() == ()
        with tracing.tracer().start_as_current_span("request") as request:
            async with database.session() as session:
                await session.execute(text("SELECT 2"))
    finally:
        await database.dispose()
        tracing.shutdown()
    [statement] = [span for span in exporter.get_finished_spans() if span.name.startswith("SELECT")]
    assert parent_of(statement) == request.get_span_context().span_id


async def test_refusals_are_attributes_not_errors(
    server_factory: ServerFactory, account: Account
) -> None:
    traced = Traced(server_factory)
    async with traced.client() as client:
        unknown = await client.post(
            "/api/v1/execute", headers={"Authorization": "Bearer ww_" + "x" * 43}
        )
        refused = await client.post(
            "/api/v1/execute",
            headers=account.headers,
            files={"wasm": ("import.wat", wat.UNKNOWN_IMPORT.encode())},
        )
    assert unknown.status_code == 401
    assert refused.status_code == 422, refused.text
    auth = by_name(await traced.spans_of(trace_of(unknown)[0], "wasmwiz.authenticate"))
    assert (auth["wasmwiz.authenticate"].attributes or {})["wasmwiz.refusal"] == unknown.json()[
        "code"
    ]
    spans = by_name(
        await traced.spans_of(trace_of(refused)[0], "wasmwiz.execute", "wasmwiz.prepare")
    )
    code = refused.json()["code"]
    assert code == "unsupported_import"
    for name in ("wasmwiz.execute", "wasmwiz.prepare"):
        assert (spans[name].attributes or {})["wasmwiz.refusal"] == code, name
        assert spans[name].status.status_code is StatusCode.UNSET, name
    assert "wasmwiz.run" not in spans


async def test_a_batch_has_one_span_and_its_module_one_prepare(
    server_factory: ServerFactory, account: Account
) -> None:
    traced = Traced(server_factory)
    async with traced.client() as client:
        response = await run_batch(
            client, account, [{"stdin": "a"}, {"stdin": "b"}, {"stdin": "c"}], wasm=wat.ECHO
        )
    assert response.status_code == 200, response.text
    trace_id, server_span_id, _ = trace_of(response)
    spans = by_name(await traced.spans_of(trace_id, "wasmwiz.batch", "wasmwiz.prepare"))
    batch_span = spans["wasmwiz.batch"]
    assert parent_of(batch_span) == server_span_id
    assert (batch_span.attributes or {})["wasmwiz.batch.cases"] == 3
    assert (batch_span.attributes or {})["wasmwiz.batch.id"] == response.json()["batch_id"]
    assert parent_of(spans["wasmwiz.admission"]) == span_id(batch_span)
    prepare = spans["wasmwiz.prepare"]
    assert parent_of(prepare) == span_id(batch_span)
    assert (prepare.attributes or {})["wasmwiz.prepare.source"] == "compiled"
    assert "wasmwiz.usage.record" not in spans  # no span per case


class Collector:
    """An OTLP/HTTP collector on 127.0.0.1 that keeps the spans it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    collector.requests.append(ExportTraceServiceRequest.FromString(body))
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Span name -> (the service's name, the span's attributes), of every request."""
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        attributes = {a.key: a.value for a in span.attributes}
                        found[span.name] = (resource["service.name"], attributes)
        return found


@pytest.mark.slow
def test_wasmwiz_serve_exports_over_otlp_when_an_endpoint_is_set(
    process_factory: Callable[..., ServerProcess], ops_account: Account
) -> None:
    collector = Collector()
    try:
        server = process_factory(
            otel_exporter_otlp_endpoint=collector.url, otel_service_name="wasmwiz-test"
        )
        response = httpx.post(
            f"{server.url}/api/v1/execute",
            headers=ops_account.headers,
            files={"wasm": ("hello.wat", wat.HELLO.encode())},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        # The lifespan's end flushes the batch of spans; uvicorn re-raises the SIGTERM
        # after its graceful shutdown.
        assert server.stop() in (0, -signal.SIGTERM)
    finally:
        collector.close()
    spans = collector.spans()
    assert set(EXECUTION) <= set(spans), sorted(spans)
    service, run = spans["wasmwiz.run"]
    assert service == "wasmwiz-test"
    assert run["wasmwiz.run.outcome"].string_value == "success"


@pytest.mark.redis
async def test_redis_commands_are_children_of_the_admission(
    server_factory: ServerFactory, account: Account
) -> None:
    redis_url = os.environ.get("WASMWIZ_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    traced = Traced(server_factory, rate_limit_backend="redis", redis_url=redis_url)
    async with traced.client() as client:
        response = await execute(client, account)
    spans = await traced.spans_of(trace_of(response)[0], *EXECUTION)
    admission = by_name(spans)["wasmwiz.admission"]
    commands = [
        span
        for span in spans
        if (span.attributes or {}).get("db.system") == "redis"
        and parent_of(span) == span_id(admission)
    ]
    assert commands, sorted(span.name for span in spans)
    assert all(span.kind is SpanKind.CLIENT for span in commands)


async def test_a_refused_jobs_run_names_the_refusal(
    server_factory: ServerFactory, account: Account
) -> None:
    traced = Traced(server_factory)
    async with traced.client() as client:
        submitted = await submit_job(client, account, wat.UNKNOWN_IMPORT)
        assert submitted.status_code == 202, submitted.text
    spans = by_name(await traced.spans_of(trace_of(submitted)[0], "wasmwiz.job.run"))
    job_run = spans["wasmwiz.job.run"]
    assert (job_run.attributes or {})["wasmwiz.refusal"] == "unsupported_import"
    assert job_run.status.status_code is StatusCode.UNSET
    assert (spans["wasmwiz.prepare"].attributes or {})["wasmwiz.refusal"] == "unsupported_import"
