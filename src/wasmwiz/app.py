"""The application factory: everything is built in create_app(settings), nothing at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor
from sqlalchemy.exc import SQLAlchemyError

from wasmwiz import __version__
from wasmwiz.api import build_api_router
from wasmwiz.api.docs import install_api_docs
from wasmwiz.api.jobs import render_job
from wasmwiz.auth import PasswordHasher, Purpose, derive_key
from wasmwiz.config import FailMode, RateLimitBackend, Settings
from wasmwiz.http_common.app_state import AppState
from wasmwiz.http_common.batch_form import BatchFormReader
from wasmwiz.http_common.draining import DrainingMiddleware
from wasmwiz.http_common.early_answers import EarlyAnswerMiddleware
from wasmwiz.http_common.execution_form import ExecutionFormReader
from wasmwiz.http_common.https_redirect import HttpsRedirectMiddleware
from wasmwiz.http_common.job_form import JobFormReader
from wasmwiz.http_common.lifecycle import Lifecycle, Phase
from wasmwiz.http_common.memory_budget import MemoryBudget
from wasmwiz.http_common.module_form import ModuleFormReader
from wasmwiz.http_common.problems import JsonResponse, install_problem_handlers
from wasmwiz.http_common.profiling import ProfilingMiddleware
from wasmwiz.http_common.request_limits import RequestLimitsMiddleware
from wasmwiz.http_common.security_headers import SecurityHeadersMiddleware
from wasmwiz.http_common.trusted_proxies import TrustedProxiesMiddleware
from wasmwiz.observability.instrumentation import (
    instrument_app,
    instrument_engine,
    instrument_httpx,
    instrument_redis,
)
from wasmwiz.observability.metrics import Metrics, Sources, start_metrics_server
from wasmwiz.observability.middleware import RequestContextMiddleware
from wasmwiz.observability.tracing import Tracing, build_tracing
from wasmwiz.persistence import Database, PoolOptions
from wasmwiz.persistence.migrate import database_schema_problem, schema_problem_async
from wasmwiz.ratelimit import (
    Clock,
    MemoryRateLimiter,
    Quota,
    RateLimiter,
    RedisRateLimiter,
    SystemClock,
)
from wasmwiz.ratelimit.compile_budget import (
    CompileBudget,
    MemoryCompileBudget,
    RedisCompileBudget,
)
from wasmwiz.sandbox import CompileLimits, InspectionLimits, Sandbox
from wasmwiz.scratch_dir import ScratchDir
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.admin import AdminService
from wasmwiz.services.compile_budgets import CompileBudgets
from wasmwiz.services.configured import api_key_service, sandbox_limits
from wasmwiz.services.executions import ExecutionService
from wasmwiz.services.health import HealthService
from wasmwiz.services.job_queue import TaskQueue, build_huey
from wasmwiz.services.jobs import JobService
from wasmwiz.services.key_cache import KeyCache
from wasmwiz.services.login_throttle import LoginThrottle, SignupThrottle
from wasmwiz.services.password_hashing import PasswordHashing
from wasmwiz.services.public_runtimes import install_bundled
from wasmwiz.services.rate_limits import AdmissionGate, ApiRequestLimit, KeyCreationLimit
from wasmwiz.services.result_cache import ResultCache
from wasmwiz.services.result_store import MemoryResultStore, RedisResultStore, ResultStore
from wasmwiz.services.retention import RetentionJob
from wasmwiz.services.stored_modules import StoredModules
from wasmwiz.services.usage_analytics import UsageAnalyticsService
from wasmwiz.services.usage_recorder import UsageRecorder
from wasmwiz.services.usage_reports import UsageReportService
from wasmwiz.services.web_sessions import WebSessionService
from wasmwiz.services.webhooks import (
    Resolver,
    TargetPolicy,
    WebhookOptions,
    WebhookSender,
    WebhookService,
    system_resolver,
)
from wasmwiz.web import install_web

logger = logging.getLogger(__name__)

# How long shutdown waits for the queue's running tasks; a job still running then is run
# again elsewhere (or after the restart) once its lease runs out.
QUEUE_STOP_SECONDS = 10.0


def build_rate_limiter(settings: Settings, clock: Clock) -> RateLimiter:
    if settings.rate_limit_backend is RateLimitBackend.REDIS:
        assert settings.redis_url is not None
        return RedisRateLimiter.from_url(settings.redis_url, clock=clock)
    return MemoryRateLimiter(clock=clock)


def build_compile_budget(settings: Settings, clock: Clock) -> CompileBudget:
    """Compile budgets where the rate limits live: shared through Redis, or this process's."""
    if settings.rate_limit_backend is RateLimitBackend.REDIS:
        assert settings.redis_url is not None
        return RedisCompileBudget.from_url(settings.redis_url, clock=clock)
    return MemoryCompileBudget(clock=clock)


def build_result_cache(
    settings: Settings, sandbox: Sandbox, metrics: Metrics
) -> ResultCache | None:
    """The result cache of deterministic runs: in Redis when REDIS_URL is set (shared by
    every replica), else in this process; None when RESULT_CACHE_SECONDS is 0."""
    if settings.result_cache_seconds == 0:
        return None
    store: ResultStore
    if settings.redis_url:
        store = RedisResultStore.from_url(settings.redis_url)
    else:
        store = MemoryResultStore(settings.result_cache_max_bytes)
    return ResultCache(
        store,
        secret=derive_key(settings.secret_key, Purpose.RESULT_CACHE),
        fingerprint=sandbox.fingerprint,
        metrics=metrics,
        ttl_seconds=settings.result_cache_seconds,
        max_entry_bytes=settings.result_cache_max_entry_bytes,
    )


def build_task_queue(settings: Settings) -> TaskQueue:
    """The queue of jobs and webhook deliveries: on Redis when REDIS_URL is set (every
    replica's workers share it), else in an SQLite file of this process's."""
    huey = build_huey(
        name=settings.queue_name,
        redis_url=settings.redis_url,
        sqlite_path=settings.effective_queue_path,
    )
    return TaskQueue(huey, workers=settings.queue_workers)


def build_webhooks(
    settings: Settings,
    database: Database,
    queue: TaskQueue,
    resolver: Resolver,
    tracing: Tracing | None = None,
) -> WebhookService:
    """Webhook endpoints and deliveries on the task queue, signed under a key derived from
    SECRET_KEY, sent only to targets WEBHOOK_ALLOW_PRIVATE_TARGETS allows."""
    policy = TargetPolicy(allow_private=settings.webhook_allow_private_targets, resolver=resolver)
    sender = WebhookSender(policy, timeout=settings.webhook_timeout)
    tracing = tracing or Tracing(None)
    instrument_httpx(sender.client, tracing)
    return WebhookService(
        database,
        queue,
        signing_key=derive_key(settings.secret_key, Purpose.WEBHOOK_SIGNING),
        policy=policy,
        sender=sender,
        tracer=tracing.tracer(),
        options=WebhookOptions(
            retry_delays=settings.webhook_retry_delays,
            attempt_seconds=settings.webhook_timeout,
            max_endpoints=settings.webhook_max_endpoints,
            disable_after_failures=settings.webhook_disable_after_failures,
            sweep_seconds=settings.webhook_sweep_seconds,
            log_days=settings.webhook_log_days,
        ),
        render_job=render_job,
    )


def prepare_temp_dir(settings: Settings) -> ScratchDir:
    """This process's own directory inside WASM_TEMP_DIR, which is never emptied (it may
    be shared): only directories earlier processes of ours left there are removed."""
    return ScratchDir.create(settings.effective_temp_dir)


class SchemaNotReady(RuntimeError):
    """The database's schema is behind this release: the message says what to run."""


async def check_schema(url: str) -> None:
    """Refuse to start on a schema the code cannot use, rather than answer every call 500.

    A database that cannot be reached is left to readiness (/health/ready), which reports it
    and turns healthy when the database returns.
    """
    try:
        problem = await schema_problem_async(url)
    except (OSError, SQLAlchemyError) as exc:
        logger.warning("could not check the database schema at start-up: %s", exc)
        return
    if problem is not None:
        logger.error("wasmwiz cannot start: %s", problem)
        raise SchemaNotReady(problem)


async def install_bundled_runtimes(database: Database) -> None:
    """Publish the shipped runtimes the database lacks; a database that cannot take them
    now is left to readiness, as at the schema check: the server starts without them."""
    try:
        await install_bundled(database)
    except (OSError, SQLAlchemyError) as exc:
        logger.warning("could not install the bundled runtimes at start-up: %s", exc)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    resolver: Resolver | None = None,
    span_processor: SpanProcessor | None = None,
) -> FastAPI:
    """The application; `clock` (rate limits), `resolver` (webhook targets' names) and
    `span_processor` (where spans go, whatever the OTEL_* settings say) are seams for
    tests."""
    metrics = Metrics()
    lifecycle = Lifecycle()
    tracing = build_tracing(settings, span_processor=span_processor)
    tracer = tracing.tracer()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scratch = prepare_temp_dir(settings)
        fail_open = settings.rate_limit_fail_mode is FailMode.OPEN
        # Each resource's cleanup is pushed as soon as it exists, so a start-up that fails
        # half way releases what it built. They unwind in reverse: in-flight runs finish
        # (sandbox) before the recorder's final flush, so their usage records are in it.
        async with AsyncExitStack() as resources:
            # Flushed last: the spans of everything stopping below are exported.
            tracing.start()
            resources.callback(tracing.shutdown)
            resources.callback(scratch.remove)
            database = Database(
                settings.effective_database_url,
                pool=PoolOptions(
                    size=settings.db_pool_size,
                    max_overflow=settings.db_max_overflow,
                    timeout=settings.db_pool_timeout,
                    recycle=settings.db_pool_recycle,
                    pre_ping=settings.db_pool_pre_ping,
                ),
            )
            resources.push_async_callback(database.dispose)
            instrument_engine(database.engine, tracing)
            await check_schema(settings.effective_database_url)
            limiter = build_rate_limiter(settings, clock or SystemClock())
            resources.push_async_callback(limiter.close)
            if isinstance(limiter, RedisRateLimiter):
                instrument_redis(limiter.client, tracing)
            compile_budget = build_compile_budget(settings, clock or SystemClock())
            resources.push_async_callback(compile_budget.close)
            if isinstance(compile_budget, RedisCompileBudget):
                instrument_redis(compile_budget.client, tracing)
            recorder = UsageRecorder(
                database,
                spool_path=settings.var_dir / "usage-spool.jsonl",
                flush_interval=settings.usage_flush_interval,
                batch_size=settings.usage_batch_size,
                tracer=tracer,
            )
            await recorder.start()
            resources.push_async_callback(recorder.close)
            sandbox = Sandbox(
                limits=sandbox_limits(settings),
                max_concurrency=settings.max_concurrent_executions,
                max_queue=settings.max_queued_executions,
                fair_queue=settings.sandbox_fair_queue,
                max_module_bytes=settings.max_wasm_size,
                cache_max_bytes=settings.compiled_cache_max_bytes,
                compile_limits=CompileLimits(
                    timeout_seconds=settings.compile_timeout,
                    memory_bytes=settings.compile_memory_limit,
                    workers=settings.compile_workers,
                ),
                inspection=InspectionLimits(
                    max_functions=settings.max_wasm_functions,
                    max_function_locals=settings.max_function_locals,
                    max_function_body_bytes=settings.max_function_body_size,
                    max_data_segments=settings.max_data_segments,
                    max_types=settings.max_wasm_types,
                    max_imports=settings.max_wasm_imports,
                    max_exports=settings.max_wasm_exports,
                    max_memories=settings.max_wasm_memories,
                    max_tables=settings.max_wasm_tables,
                ),
                extra_features=settings.wasm_extra_feature_set,
                files_budget_bytes=settings.files_budget,
                cache_dir=settings.effective_compiled_cache_dir,
                disk_cache_max_bytes=settings.compiled_cache_disk_max_bytes,
                cache_mac_key=derive_key(settings.secret_key, Purpose.ARTIFACT_MAC),
            )
            if settings.compile_workers_at_start:
                sandbox.start_compile_workers()
            resources.callback(sandbox.close)
            results = build_result_cache(settings, sandbox, metrics)
            if results is not None:
                resources.push_async_callback(results.close)
                if isinstance(results.store, RedisResultStore):
                    instrument_redis(results.store.client, tracing)
            queue = build_task_queue(settings)
            # Webhooks: a separate block (the queue's tasks, the admission gate's watcher,
            # the key service's and the jobs' events all lead here).
            webhooks = build_webhooks(
                settings, database, queue, resolver or system_resolver, tracing
            )
            gate = AdmissionGate(
                limiter, metrics, fail_open=fail_open, watcher=webhooks.quota_used, tracer=tracer
            )
            key_cache = KeyCache(settings.api_key_cache_seconds)
            # Password hashing's own few threads, never asyncio's default pool.
            hashing = PasswordHashing(
                PasswordHasher(
                    time_cost=settings.password_hash_time_cost,
                    memory_kib=settings.password_hash_memory_kib,
                    parallelism=settings.password_hash_parallelism,
                ),
                threads=settings.password_hash_threads,
                queue=settings.password_hash_queue,
            )
            resources.callback(hashing.close)
            await hashing.prepare()
            if settings.install_bundled_runtimes:
                await install_bundled_runtimes(database)
            compile_budgets = CompileBudgets(compile_budget)
            modules = StoredModules(
                database,
                sandbox,
                gate,
                metrics,
                compile_budgets=compile_budgets,
                cache_seconds=settings.api_key_cache_seconds,
            )
            executions = ExecutionService(
                sandbox,
                gate,
                recorder,
                sandbox_limits(settings),
                metrics,
                compile_budgets=compile_budgets,
                modules=modules,
                batch_timeout=settings.batch_timeout,
                results=results,
                tracer=tracer,
            )
            jobs = JobService(
                database,
                executions,
                queue,
                metrics,
                lease_seconds=settings.job_lease_seconds,
                sweep_seconds=settings.job_sweep_seconds,
                max_attempts=settings.job_max_attempts,
                requeue_seconds=settings.job_requeue_seconds,
                events=webhooks,
                tracer=tracer,
            )
            state = AppState(
                settings=settings,
                metrics=metrics,
                database=database,
                executions=executions,
                jobs=jobs,
                job_form=JobFormReader(
                    max_wasm_size=settings.max_wasm_size,
                    max_input_size=settings.max_input_size,
                    files=settings.file_input_limits,
                ),
                batch_form=BatchFormReader(
                    max_wasm_size=settings.max_wasm_size,
                    max_input_size=settings.max_input_size,
                    max_cases=settings.max_batch_cases,
                    files=settings.file_input_limits,
                ),
                execution_form=ExecutionFormReader(
                    max_wasm_size=settings.max_wasm_size,
                    max_input_size=settings.max_input_size,
                    files=settings.file_input_limits,
                ),
                modules=modules,
                module_form=ModuleFormReader(max_wasm_size=settings.max_wasm_size),
                api_keys=api_key_service(
                    settings,
                    cache=key_cache,
                    events=webhooks,
                    tracer=tracer,
                    creation_limit=KeyCreationLimit(
                        limiter,
                        metrics,
                        Quota(settings.key_creations_per_minute, settings.key_creations_per_day),
                        fail_open=fail_open,
                    ),
                ),
                api_requests=ApiRequestLimit(
                    limiter,
                    metrics,
                    Quota(settings.api_requests_per_minute, settings.api_requests_per_day),
                    fail_open=fail_open,
                ),
                health=HealthService(
                    database,
                    sandbox,
                    scratch.path,
                    limiter,
                    schema_problem=lambda: database_schema_problem(database),
                    cache_seconds=settings.health_cache_seconds,
                ),
                accounts=AccountService(
                    hashing, key_cache=key_cache, signup_mode=settings.signup_mode
                ),
                web_sessions=WebSessionService(timedelta(hours=settings.session_lifetime_hours)),
                login_throttle=LoginThrottle(
                    limiter,
                    per_account_per_minute=settings.login_attempts_per_minute,
                    per_account_per_day=settings.login_attempts_per_day,
                    per_ip_per_minute=settings.login_attempts_per_ip_per_minute,
                    fail_open=fail_open,
                ),
                signup_throttle=SignupThrottle(
                    limiter,
                    per_network=Quota(
                        settings.signup_per_network_per_minute,
                        settings.signup_per_network_per_day,
                    ),
                    overall=Quota(
                        settings.signup_global_per_minute, settings.signup_global_per_day
                    ),
                    fail_open=fail_open,
                ),
                usage_reports=UsageReportService(),
                usage_analytics=UsageAnalyticsService(),
                admin=AdminService(key_cache=key_cache),
                webhooks=webhooks,
            )
            app.state.wasmwiz = state
            resources.callback(state.health.close)
            metrics.watch(
                _metric_sources(
                    state, sandbox, recorder, lifecycle, (limiter, compile_budget), queue
                )
            )
            if settings.metrics_port is not None:
                resources.callback(
                    start_metrics_server(
                        metrics.registry, host=settings.server_host, port=settings.metrics_port
                    )
                )
            if settings.usage_retention_interval_hours > 0:
                retention = RetentionJob(
                    database,
                    metrics,
                    retention_days=settings.usage_retention_days,
                    batch_size=settings.usage_retention_batch_size,
                    interval=settings.usage_retention_interval_hours * 3600,
                )
                retention.start()
                resources.push_async_callback(retention.close)
            # The webhooks' HTTP client closes after the queue has stopped: its last tasks
            # still send with it.
            resources.push_async_callback(webhooks.close_sender)
            # Last to start, first to stop: a task in flight still has the database, the
            # sandbox and the usage recorder while the queue drains.
            queue.start()
            resources.push_async_callback(queue.stop, QUEUE_STOP_SECONDS)
            jobs.start()
            resources.push_async_callback(jobs.close)
            webhooks.start()
            resources.push_async_callback(webhooks.close)
            lifecycle.mark_ready()
            logger.info("wasmwiz %s ready", __version__)
            try:
                yield
            finally:
                lifecycle.begin_draining()
        logger.info("wasmwiz stopped; usage records written: %d", recorder.written)

    app = FastAPI(
        title="WasmWiz",
        version=__version__,
        summary="Run untrusted WebAssembly (WASI) modules inside strict limits.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        debug=settings.debug,
        default_response_class=JsonResponse,
    )
    app.state.lifecycle = lifecycle
    install_problem_handlers(app)
    app.include_router(build_api_router())
    install_api_docs(app)
    install_web(app)
    install_http_middleware(app, settings, metrics, lifecycle)
    instrument_app(app, tracing)
    return app


# The routes that take a module upload; every other route takes MAX_FORM_BODY_SIZE.
UPLOAD_PATHS = frozenset(
    {
        "/api/v1/execute",
        "/execute",
        "/upload",
        "/api/v1/modules",
        "/api/v1/execute/batch",
        "/api/v1/jobs",
    }
)


def install_http_middleware(
    app: FastAPI, settings: Settings, metrics: Metrics, lifecycle: Lifecycle
) -> None:
    """The pure-ASGI stack, outermost last: proxies are resolved before anything reads the
    client address or scheme, and the headers and access log cover every response."""
    if settings.profiling_active:
        # Innermost: a profile covers the routing, the route and its unit of work.
        app.add_middleware(ProfilingMiddleware)
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.effective_max_request_body_size,
        body_timeout=settings.request_body_timeout,
        max_form_body_bytes=settings.max_form_body_size,
        upload_paths=UPLOAD_PATHS,
        budget=MemoryBudget(settings.request_memory_budget, wait=settings.request_memory_wait),
    )
    app.add_middleware(DrainingMiddleware, lifecycle=lifecycle)
    if settings.https_redirect:
        app.add_middleware(HttpsRedirectMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, hsts_max_age=settings.hsts_max_age)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(TrustedProxiesMiddleware, networks=settings.trusted_proxy_networks)
    app.add_middleware(
        EarlyAnswerMiddleware,
        drain_bytes=settings.early_answer_drain_bytes,
        drain_timeout=settings.early_answer_drain_timeout,
    )


def _metric_sources(
    state: AppState,
    sandbox: Sandbox,
    recorder: UsageRecorder,
    lifecycle: Lifecycle,
    limiters: tuple[RateLimiter, CompileBudget],
    queue: TaskQueue,
) -> Sources:
    pool, hashing = state.database.engine.pool, state.accounts.hashing
    return Sources(
        in_flight=lambda: sandbox.stats().in_flight,
        capacity=lambda: sandbox.stats().capacity,
        queued=lambda: sandbox.stats().queued,
        cache_hits=lambda: sandbox.stats().cache_hits,
        cache_misses=lambda: sandbox.stats().cache_misses,
        cache_bytes=lambda: sandbox.stats().cache_bytes,
        compile_worker_crashes=lambda: sandbox.stats().compile_worker_crashes_by_signal,
        usage_pending=lambda: recorder.pending,
        usage_lag=lambda: recorder.lag_seconds,
        usage_written=lambda: recorder.written,
        usage_write_failures=lambda: recorder.failures,
        # NullPool and friends have no size; report 0 rather than invent one.
        db_pool_size=lambda: getattr(pool, "size", lambda: 0)(),
        db_pool_checked_out=lambda: getattr(pool, "checkedout", lambda: 0)(),
        db_pool_overflow=lambda: getattr(pool, "overflow", lambda: 0)(),
        ready=lambda: 1 if lifecycle.phase is Phase.READY else 0,
        rate_limiter_errors=lambda: sum(limiter.errors for limiter in limiters),
        task_queue_depth=lambda: {queue.name: queue.depth},
        password_hashes_running=lambda: hashing.running,
        password_hashes_peak=lambda: hashing.peak_running,
        password_hashes_refused=lambda: hashing.refused,
        password_hashes_completed=lambda: hashing.completed,
    )
