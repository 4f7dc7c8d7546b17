"""The application factory: everything is built in create_app(settings), nothing at import."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from wasmwiz import __version__
from wasmwiz.api import build_api_router
from wasmwiz.api.docs import install_api_docs
from wasmwiz.config import FailMode, RateLimitBackend, Settings
from wasmwiz.http_common.draining import DrainingMiddleware
from wasmwiz.http_common.https_redirect import HttpsRedirectMiddleware
from wasmwiz.http_common.problems import install_problem_handlers
from wasmwiz.http_common.request_limits import RequestLimitsMiddleware
from wasmwiz.http_common.security_headers import SecurityHeadersMiddleware
from wasmwiz.http_common.trusted_proxies import TrustedProxiesMiddleware
from wasmwiz.observability.metrics import Metrics, Sources, start_metrics_server
from wasmwiz.observability.middleware import RequestContextMiddleware
from wasmwiz.persistence import Database, PoolOptions
from wasmwiz.ratelimit import (
    Clock,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    SystemClock,
)
from wasmwiz.sandbox import CompileLimits, InspectionLimits, Limits, Sandbox
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.container import Services
from wasmwiz.services.executions import ExecutionService
from wasmwiz.services.health import HealthService, Lifecycle, Phase
from wasmwiz.services.key_cache import KeyCache
from wasmwiz.services.login_throttle import LoginThrottle
from wasmwiz.services.rate_limits import AdmissionGate
from wasmwiz.services.retention import RetentionJob
from wasmwiz.services.usage_recorder import UsageRecorder
from wasmwiz.services.usage_reports import UsageReportService
from wasmwiz.services.web_sessions import WebSessionService
from wasmwiz.web import install_web

logger = logging.getLogger(__name__)


def sandbox_limits(settings: Settings) -> Limits:
    return Limits(
        timeout_seconds=settings.execution_timeout,
        memory_bytes=settings.memory_limit,
        max_output_bytes=settings.max_output_size,
    )


def build_rate_limiter(settings: Settings, clock: Clock) -> RateLimiter:
    if settings.rate_limit_backend is RateLimitBackend.REDIS:
        assert settings.redis_url is not None
        return RedisRateLimiter.from_url(settings.redis_url, clock=clock)
    return MemoryRateLimiter(clock=clock)


def prepare_temp_dir(settings: Settings) -> None:
    """Start with an empty temp dir: nothing a previous process left behind is trusted."""
    temp_dir = settings.effective_temp_dir
    if temp_dir.exists():
        shutil.rmtree(temp_dir)
    temp_dir.mkdir(parents=True, mode=0o700)


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    metrics = Metrics()
    lifecycle = Lifecycle()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_temp_dir(settings)
        fail_open = settings.rate_limit_fail_mode is FailMode.OPEN
        # Each resource's cleanup is pushed as soon as it exists, so a start-up that fails
        # half way releases what it built. They unwind in reverse: in-flight runs finish
        # (sandbox) before the recorder's final flush, so their usage records are in it.
        async with AsyncExitStack() as resources:
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
            limiter = build_rate_limiter(settings, clock or SystemClock())
            resources.push_async_callback(limiter.close)
            recorder = UsageRecorder(
                database,
                spool_path=settings.var_dir / "usage-spool.jsonl",
                flush_interval=settings.usage_flush_interval,
                batch_size=settings.usage_batch_size,
            )
            await recorder.start()
            resources.push_async_callback(recorder.close)
            sandbox = Sandbox(
                limits=sandbox_limits(settings),
                max_concurrency=settings.max_concurrent_executions,
                max_queue=settings.max_queued_executions,
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
                ),
                cache_dir=settings.effective_compiled_cache_dir,
                disk_cache_max_bytes=settings.compiled_cache_disk_max_bytes,
            )
            sandbox.start_compile_workers()
            resources.callback(sandbox.close)
            gate = AdmissionGate(limiter, metrics, fail_open=fail_open)
            key_cache = KeyCache(settings.api_key_cache_seconds)
            services = Services(
                settings=settings,
                metrics=metrics,
                database=database,
                sandbox=sandbox,
                limiter=limiter,
                gate=gate,
                recorder=recorder,
                executions=ExecutionService(
                    sandbox, gate, recorder, sandbox_limits(settings), metrics
                ),
                api_keys=ApiKeyService(settings.api_salt, cache=key_cache),
                health=HealthService(
                    database, sandbox, settings.effective_temp_dir, limiter, lifecycle
                ),
                accounts=AccountService(key_cache=key_cache),
                web_sessions=WebSessionService(timedelta(hours=settings.session_lifetime_hours)),
                login_throttle=LoginThrottle(
                    limiter,
                    per_account_per_minute=settings.login_attempts_per_minute,
                    per_ip_per_minute=settings.login_attempts_per_ip_per_minute,
                    fail_open=fail_open,
                ),
                usage_reports=UsageReportService(),
            )
            app.state.services = services
            metrics.watch(_metric_sources(services, lifecycle))
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
    )
    app.state.lifecycle = lifecycle
    install_problem_handlers(app)
    app.include_router(build_api_router())
    install_api_docs(app)
    install_web(app)
    install_http_middleware(app, settings, metrics, lifecycle)
    return app


def install_http_middleware(
    app: FastAPI, settings: Settings, metrics: Metrics, lifecycle: Lifecycle
) -> None:
    """The pure-ASGI stack, outermost last: proxies are resolved before anything reads the
    client address or scheme, and the headers and access log cover every response."""
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.effective_max_request_body_size,
        body_timeout=settings.request_body_timeout,
    )
    app.add_middleware(DrainingMiddleware, lifecycle=lifecycle)
    if settings.https_redirect:
        app.add_middleware(HttpsRedirectMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, hsts_max_age=settings.hsts_max_age)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(TrustedProxiesMiddleware, networks=settings.trusted_proxy_networks)


def _metric_sources(services: Services, lifecycle: Lifecycle) -> Sources:
    sandbox, recorder, pool = services.sandbox, services.recorder, services.database.engine.pool
    return Sources(
        in_flight=lambda: sandbox.stats().in_flight,
        queued=lambda: sandbox.stats().queued,
        cache_hits=lambda: sandbox.stats().cache_hits,
        cache_misses=lambda: sandbox.stats().cache_misses,
        cache_bytes=lambda: sandbox.stats().cache_bytes,
        usage_pending=lambda: recorder.pending,
        usage_lag=lambda: recorder.lag_seconds,
        usage_written=lambda: recorder.written,
        usage_write_failures=lambda: recorder.failures,
        # NullPool and friends have no size; report 0 rather than invent one.
        db_pool_size=lambda: getattr(pool, "size", lambda: 0)(),
        db_pool_checked_out=lambda: getattr(pool, "checkedout", lambda: 0)(),
        db_pool_overflow=lambda: getattr(pool, "overflow", lambda: 0)(),
        ready=lambda: 1 if lifecycle.phase is Phase.READY else 0,
    )
