"""Settings read from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import ipaddress
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wasmwiz.sandbox.file_input import InputLimits

MiB = 1024 * 1024
DEFAULT_VAR_DIR = Path("var")
MIN_SECRET_KEY_LENGTH = 32
# Substrings of the sample secrets people copy from examples and forget to replace.
_PLACEHOLDER_SECRETS = ("change-me", "changeme", "change_me", "replace-me", "example")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class RateLimitBackend(StrEnum):
    MEMORY = "memory"
    REDIS = "redis"


class FailMode(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class SignupMode(StrEnum):
    OPEN = "open"
    INVITE = "invite"
    CLOSED = "closed"


class TracesExporter(StrEnum):
    OTLP = "otlp"
    CONSOLE = "console"
    NONE = "none"


class TracesSampler(StrEnum):
    """OTEL_TRACES_SAMPLER's values (the OpenTelemetry SDK's names)."""

    ALWAYS_ON = "always_on"
    ALWAYS_OFF = "always_off"
    TRACEIDRATIO = "traceidratio"
    PARENTBASED_ALWAYS_ON = "parentbased_always_on"
    PARENTBASED_ALWAYS_OFF = "parentbased_always_off"
    PARENTBASED_TRACEIDRATIO = "parentbased_traceidratio"


class ConfigurationError(Exception):
    """The settings cannot be used; the message names the offending variable."""


PositiveInt = Annotated[int, Field(gt=0)]


class Settings(BaseSettings):
    """Every knob of the service. See docs/configuration.md for what each one does."""

    # An empty variable (`METRICS_PORT=` as in .env.example) means "not set": the default.
    # No .env by default: the commands ask for one (load_settings(env_file=ENV_FILE)), so
    # tests and code that embeds the app never pick up a developer's file.
    model_config = SettingsConfigDict(
        env_file=None, env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    server_host: str = "127.0.0.1"
    server_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    # Production operations (docs/operations.md): serving, proxies, limits, lifecycle.
    debug: bool = False
    # `X-Profile` with an administrator's key (docs/operations.md); unset: on in development.
    profiling_enabled: bool | None = None
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    https_redirect: bool = False
    hsts_max_age: Annotated[int, Field(ge=0)] = 31_536_000
    trusted_proxies: str = ""
    request_body_timeout: Annotated[float, Field(gt=0)] = 30.0
    max_request_body_size: PositiveInt | None = None
    max_header_size: Annotated[int, Field(ge=1024)] = 64 * 1024
    # Transport bounds (docs/security.md, "Requests"): what a connection may cost before
    # the app sees a request, and how refusals made before the body is read are delivered.
    max_header_count: Annotated[int, Field(ge=16, le=10_000)] = 100
    header_timeout: Annotated[float, Field(gt=0)] = 10.0
    max_connections: Annotated[int, Field(ge=1)] = 1024
    max_form_body_size: Annotated[int, Field(ge=1024)] = 64 * 1024
    request_memory_budget: Annotated[int, Field(ge=MiB)] = 256 * MiB
    request_memory_wait: Annotated[float, Field(ge=0)] = 2.0
    early_answer_drain_bytes: Annotated[int, Field(ge=0)] = 128 * MiB
    early_answer_drain_timeout: Annotated[float, Field(ge=0)] = 10.0
    shutdown_grace_period: Annotated[float, Field(gt=0)] = 30.0
    metrics_token: str = ""
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    usage_retention_days: PositiveInt = 30
    usage_retention_interval_hours: Annotated[float, Field(ge=0)] = 0.0
    usage_retention_batch_size: PositiveInt = 5000
    db_pool_size: PositiveInt = 10
    db_max_overflow: Annotated[int, Field(ge=0)] = 10
    db_pool_timeout: Annotated[float, Field(gt=0)] = 30.0
    db_pool_recycle: Annotated[int, Field(ge=-1)] = 1800
    db_pool_pre_ping: bool = True

    var_dir: Path = DEFAULT_VAR_DIR
    database_url: str = ""
    # The one server secret; each use gets its own key derived from it (auth.key_derivation).
    # API_SALT is its old name, still accepted: both fields end up holding the one value
    # (_resolve_secret_key). Read secret_key.
    secret_key: str = ""
    api_salt: str = ""
    # How new API keys are hashed, and what a key is moved to when used: 2 under the key
    # derived from SECRET_KEY, 1 under SECRET_KEY itself (what 0.1.0 reads; for an
    # upgrade that may still be rolled back, docs/api-keys.md).
    api_key_hash_scheme: Annotated[int, Field(ge=1, le=2)] = 2

    wasm_temp_dir: Path | None = None
    max_wasm_size: PositiveInt = 10 * MiB
    max_input_size: PositiveInt = 1 * MiB
    max_output_size: PositiveInt = 1 * MiB
    execution_timeout: Annotated[float, Field(gt=0, le=300)] = 5.0
    # A batch (POST /api/v1/execute/batch): at most this many cases, all of them run
    # within BATCH_TIMEOUT seconds of wall time (each case keeps EXECUTION_TIMEOUT).
    max_batch_cases: Annotated[int, Field(ge=1, le=1000)] = 100
    batch_timeout: Annotated[float, Field(gt=0, le=3600)] = 60.0
    memory_limit: Annotated[int, Field(ge=64 * 1024)] = 128 * MiB
    # Files (docs/files.md). A run's input files (`files` parts or an expanded `archive`):
    # bytes, entries (directories included), path length in bytes and depth.
    files_max_input_bytes: PositiveInt = 16 * MiB
    files_max_input_entries: Annotated[int, Field(ge=1, le=100_000)] = 1000
    files_max_path_length: Annotated[int, Field(ge=1, le=4096)] = 1024
    files_max_path_depth: Annotated[int, Field(ge=1, le=256)] = 32
    # What a run's directory may hold while it runs (input included): past either, the
    # guest's writes fail with EDQUOT.
    files_quota: PositiveInt = 64 * MiB
    files_max_entries: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    # The collected files' contents in one result, before base64.
    files_max_output_bytes: PositiveInt = 8 * MiB
    # What all runs' directories hold together (in memory); spent, runs with files are
    # refused with 503 server_busy and a guest's writes fail with ENOSPC.
    files_budget: PositiveInt = 1024 * MiB
    # Together at most the sandbox's WorkerPool.MAX_CAPACITY (4096).
    max_concurrent_executions: Annotated[int, Field(ge=1, le=256)] = 4
    max_queued_executions: Annotated[int, Field(ge=0, le=3840)] = 64
    # Waiting runs served round-robin across accounts; false: one queue in arrival order
    # (the previous behaviour, kept for side-by-side benchmarks: bench/fairness.py).
    sandbox_fair_queue: bool = True
    compiled_cache_max_bytes: PositiveInt = 256 * MiB
    # Compilation (docs/security.md): a worker process per compile, bounded from outside.
    compile_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    compile_memory_limit: Annotated[int, Field(ge=256 * MiB)] = 2048 * MiB
    compile_workers: Annotated[int, Field(ge=1, le=64)] = 2
    # Start them with the server, so no request waits for one; false: on the first compile.
    compile_workers_at_start: bool = True
    # Publish the runtimes the package ships (QuickJS-ng, Lua) into the database at start,
    # each version once; false leaves public runtimes to `wasmwiz runtimes publish`.
    install_bundled_runtimes: bool = True
    compiled_cache_dir: Path | None = None
    compiled_cache_disk_max_bytes: Annotated[int, Field(ge=0)] = 1024 * MiB
    # Pre-compile inspection: modules declaring more are refused before compiling.
    max_wasm_functions: PositiveInt = 100_000
    max_function_locals: PositiveInt = 10_000
    max_function_body_size: PositiveInt = 1 * MiB
    max_data_segments: PositiveInt = 100_000
    # Declared counts checked before a section's entries are read (docs/security.md).
    max_wasm_types: PositiveInt = 10_000
    max_wasm_imports: PositiveInt = 1_000
    max_wasm_exports: PositiveInt = 10_000
    max_wasm_memories: PositiveInt = 16
    max_wasm_tables: Annotated[int, Field(ge=1, le=4)] = 4  # a run's store allows 4
    # Optional WebAssembly proposals on top of the default (wasmtime's Tier 1 set):
    # comma-separated names from the sandbox's OPTIONAL_FEATURES.
    wasm_extra_features: str = ""

    rate_limit_backend: RateLimitBackend = RateLimitBackend.MEMORY
    redis_url: str | None = None
    rate_limit_fail_mode: FailMode = FailMode.CLOSED
    # How stale an authenticated key may be here after a change made elsewhere (key_cache).
    api_key_cache_seconds: Annotated[float, Field(ge=0, le=30)] = 5.0
    # The result cache of deterministic runs (services/result_cache.py): how long a result
    # is kept (0: no cache), and, in this process when REDIS_URL is not set, how many bytes
    # all of them may take; no result larger than the entry limit is kept, in either.
    result_cache_seconds: Annotated[float, Field(ge=0, le=7 * 86400)] = 3600.0
    result_cache_max_bytes: PositiveInt = 64 * MiB
    result_cache_max_entry_bytes: PositiveInt = 4 * MiB
    # The task queue under jobs and webhook deliveries (services/job_queue.py, docs/jobs.md):
    # on Redis when REDIS_URL is set (every replica shares it), else an SQLite file in
    # VAR_DIR (QUEUE_PATH). QUEUE_WORKERS threads of this process take its tasks (0: this
    # process only enqueues; another works the queue).
    queue_path: Path | None = None
    # The queue's name: processes with one name share its messages (on Redis, its keys).
    queue_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "wasmwiz"
    queue_workers: Annotated[int, Field(ge=0, le=64)] = 4
    # Jobs: a running job's lease (renewed while it runs; past it, its process is taken for
    # dead and the job is queued again), how often each process looks for such jobs, lost
    # messages and expired results, how many attempts a job gets, and after how long a
    # queued job's message is taken for lost (a process killed between taking it and
    # claiming the job, Redis restarted) and enqueued again.
    job_lease_seconds: Annotated[float, Field(ge=1, le=600)] = 30.0
    job_sweep_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    job_max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    job_requeue_seconds: Annotated[float, Field(ge=1, le=3600)] = 120.0
    # Webhooks (services/webhooks/, docs/webhooks.md): the time one delivery attempt may
    # take, the waits between attempts (seconds, comma-separated: one more attempt each),
    # how many endpoints an account may have, after how many deliveries in a row that
    # failed every attempt an endpoint is disabled, how often each process looks for
    # deliveries whose message was lost, and whether targets on private networks (loopback,
    # RFC 1918, ULA, 100.64/10) may be called: never in a shared deployment.
    webhook_timeout: Annotated[float, Field(gt=0, le=60)] = 10.0
    webhook_retry_schedule: Annotated[str, Field(pattern=r"^\s*(\d+(\.\d+)?\s*(,\s*|$))*$")] = (
        "5,300,1800,7200,18000,36000,36000"
    )
    webhook_max_endpoints: Annotated[int, Field(ge=1, le=1000)] = 10
    webhook_disable_after_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    webhook_sweep_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # Events and their deliveries (the delivery log) are deleted after this many days.
    webhook_log_days: Annotated[int, Field(ge=1, le=3650)] = 30
    webhook_allow_private_targets: bool = False
    # How long /health and /health/ready reuse one run of their checks (services/health.py).
    health_cache_seconds: Annotated[float, Field(ge=0, le=60)] = 5.0
    # Key creation per account, over the API and the web pages (every attempt counts).
    key_creations_per_minute: Annotated[int, Field(ge=1, le=1000)] = 5
    key_creations_per_day: Annotated[int, Field(ge=1, le=100_000)] = 50
    # Every API call with a key but the runs themselves (which have their tier's limits),
    # and every signed-in page, per account: listing, usage reports, polling jobs, managing
    # keys, modules, webhooks. A tier with a budget of its own (migration 0013) has that.
    api_requests_per_minute: Annotated[int, Field(ge=1, le=1_000_000)] = 600
    api_requests_per_day: Annotated[int, Field(ge=1, le=100_000_000)] = 200_000

    # Tracing (docs/operations.md "Tracing"): OpenTelemetry's own variables. Off unless an
    # exporter is named or an OTLP endpoint is set (observability/tracing.py).
    otel_sdk_disabled: bool = False
    otel_traces_exporter: TracesExporter | None = None
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_traces_sampler: TracesSampler = TracesSampler.PARENTBASED_ALWAYS_ON
    otel_traces_sampler_arg: Annotated[float, Field(ge=0, le=1)] = 1.0
    otel_service_name: str = "wasmwiz"

    usage_flush_interval: Annotated[float, Field(gt=0)] = 0.5
    usage_batch_size: PositiveInt = 500

    session_lifetime_hours: Annotated[float, Field(gt=0, le=24 * 90)] = 24 * 7
    login_attempts_per_minute: PositiveInt = 5
    login_attempts_per_ip_per_minute: PositiveInt = 30
    # Sign-up and sign-in abuse (docs/security.md, "Accounts"): per client network
    # (IPv4 address, IPv6 /64) and for the whole service, on the rate limiter.
    login_attempts_per_day: PositiveInt = 100
    signup_mode: SignupMode = SignupMode.OPEN
    signup_per_network_per_minute: PositiveInt = 5
    signup_per_network_per_day: PositiveInt = 50
    signup_global_per_minute: PositiveInt = 60
    signup_global_per_day: PositiveInt = 5000
    password_hash_threads: Annotated[int, Field(ge=1, le=32)] = 2
    password_hash_queue: Annotated[int, Field(ge=0, le=1000)] = 16
    # argon2id's cost (RFC 9106's low-memory profile by default). Lower values make stored
    # passwords cheaper to guess; the test suite alone runs on the minimum.
    password_hash_time_cost: Annotated[int, Field(ge=1, le=100)] = 3
    password_hash_memory_kib: Annotated[int, Field(ge=8, le=4 * 1024 * 1024)] = 64 * 1024
    password_hash_parallelism: Annotated[int, Field(ge=1, le=64)] = 4

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        if self.rate_limit_backend is RateLimitBackend.REDIS and not self.redis_url:
            raise ValueError("REDIS_URL must be set when RATE_LIMIT_BACKEND=redis")
        self._resolve_secret_key()
        if (
            self.environment is Environment.PRODUCTION
            and len(self.secret_key) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                f"SECRET_KEY (or its old name API_SALT) must be set to a secret of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters when ENVIRONMENT=production"
            )
        self._check_operations()
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError(
                "PASSWORD_HASH_MEMORY_KIB must be at least 8 KiB per lane "
                "(8 times PASSWORD_HASH_PARALLELISM): argon2 refuses less"
            )
        if self.result_cache_max_entry_bytes > self.result_cache_max_bytes:
            raise ValueError("RESULT_CACHE_MAX_ENTRY_BYTES must not exceed RESULT_CACHE_MAX_BYTES")
        if self.files_max_input_bytes > self.files_quota:
            raise ValueError("FILES_MAX_INPUT_BYTES must not exceed FILES_QUOTA")
        if self.files_max_input_entries > self.files_max_entries:
            raise ValueError("FILES_MAX_INPUT_ENTRIES must not exceed FILES_MAX_ENTRIES")
        if self.files_quota > self.files_budget:
            raise ValueError("FILES_QUOTA must not exceed FILES_BUDGET")
        if self.workers > 1 and self.rate_limit_backend is RateLimitBackend.MEMORY:
            # Each process would keep its own buckets, quotas and slots: N times every limit.
            raise ValueError(
                "WORKERS > 1 needs RATE_LIMIT_BACKEND=redis, so the processes share one set "
                "of limits; or run one worker (it uses every core for wasm through threads)"
            )
        return self

    @property
    def file_input_limits(self) -> InputLimits:
        return InputLimits(
            max_bytes=self.files_max_input_bytes,
            max_entries=self.files_max_input_entries,
            max_path_length=self.files_max_path_length,
            max_path_depth=self.files_max_path_depth,
        )

    @property
    def wasm_extra_feature_set(self) -> frozenset[str]:
        return frozenset(self.wasm_extra_features.replace(",", " ").split())

    def _check_wasm_features(self) -> None:
        if not self.wasm_extra_feature_set:
            return
        from wasmwiz.sandbox.engine import OPTIONAL_FEATURES  # wasmtime: only when needed

        unknown = self.wasm_extra_feature_set - OPTIONAL_FEATURES
        if unknown:
            raise ValueError(
                f"WASM_EXTRA_FEATURES: {', '.join(sorted(unknown))} cannot be enabled; "
                f"the optional features are {', '.join(sorted(OPTIONAL_FEATURES))}"
            )

    def _resolve_secret_key(self) -> None:
        if self.secret_key and self.api_salt and self.secret_key != self.api_salt:
            raise ValueError(
                "SECRET_KEY and API_SALT (its old name) are both set, to different values; "
                "keep one (API keys made so far are hashed under API_SALT's value)"
            )
        self.secret_key = self.api_salt = self.secret_key or self.api_salt

    def _check_operations(self) -> None:
        self._check_wasm_features()
        self.trusted_proxy_networks  # noqa: B018 - raises ValueError naming a bad entry
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("TLS_CERTFILE and TLS_KEYFILE must be set together")
        if self.metrics_port is not None and self.workers > 1:
            raise ValueError("METRICS_PORT cannot be used with WORKERS > 1: each would bind it")
        if self.environment is not Environment.PRODUCTION:
            return
        # Refused in production because each one is unsafe there, not merely unusual.
        if any(marker in self.secret_key.lower() for marker in _PLACEHOLDER_SECRETS):
            raise ValueError(
                "SECRET_KEY (or API_SALT) is a placeholder value; generate a random secret"
            )
        if self.debug:
            raise ValueError("DEBUG must be off when ENVIRONMENT=production")
        if not self.tls_enabled and not self.trusted_proxies:
            # Behind a TLS proxy that is not trusted, requests look like plain HTTP and
            # session cookies would be sent without Secure.
            raise ValueError(
                "production needs TLS_CERTFILE/TLS_KEYFILE, or TRUSTED_PROXIES naming the "
                "TLS-terminating proxy's addresses"
            )
        if not self.metrics_token and self.metrics_port is None:
            raise ValueError(
                "production needs METRICS_TOKEN, or METRICS_PORT to serve /metrics on a port "
                "of its own: otherwise /metrics is open to anyone"
            )
        if self.workers > 1 and self.effective_database_url.startswith("sqlite"):
            raise ValueError(
                "SQLite cannot be shared by several WORKERS in production; use PostgreSQL"
            )

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        networks = []
        for entry in self.trusted_proxies.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"TRUSTED_PROXIES: {entry!r} is not an IP address or network"
                ) from None
        return tuple(networks)

    @property
    def tls_enabled(self) -> bool:
        return self.tls_certfile is not None

    @property
    def effective_max_request_body_size(self) -> int:
        # The execute form's own limits plus room for multipart framing and small fields.
        return self.max_request_body_size or (
            self.max_wasm_size
            + self.max_input_size
            + self.files_max_input_bytes
            + self.files_max_input_entries * 512
            + MiB
        )

    @property
    def webhook_retry_delays(self) -> tuple[float, ...]:
        """WEBHOOK_RETRY_SCHEDULE as the waits before the second, third... attempts."""
        return tuple(float(part) for part in self.webhook_retry_schedule.split(",") if part.strip())

    @property
    def effective_queue_path(self) -> Path:
        return self.queue_path or self.var_dir / "queue.db"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'wasmwiz.db').resolve()}"

    @property
    def effective_compiled_cache_dir(self) -> Path | None:
        """None when the disk cache is off (COMPILED_CACHE_DISK_MAX_BYTES=0)."""
        if self.compiled_cache_disk_max_bytes == 0:
            return None
        return self.compiled_cache_dir or self.var_dir / "compiled"

    @property
    def effective_temp_dir(self) -> Path:
        return self.wasm_temp_dir or self.var_dir / "tmp"

    @property
    def profiling_active(self) -> bool:
        """PROFILING_ENABLED, or by default whether this is a development server."""
        if self.profiling_enabled is not None:
            return self.profiling_enabled
        return self.environment is Environment.DEVELOPMENT

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION


# The file the `wasmwiz` commands read settings from, in the working directory.
ENV_FILE = ".env"


def load_settings(
    *, generate_salt: bool = True, env_file: str | None = None, **overrides: object
) -> Settings:
    """Build the settings, turning validation errors into one readable message.

    From the environment and `overrides`, and from `env_file` when one is named (the
    commands name ENV_FILE; nothing else reads a .env).

    Outside production a missing SECRET_KEY is generated once and kept in
    VAR_DIR/api_salt (the file's name from before the rename), so keys created in one run
    still work in the next; `generate_salt=False` leaves it empty
    and writes nothing (commands that hash no key, or have not found a database yet).
    """
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None
    if generate_salt and not settings.secret_key:
        secret = _development_salt(settings.var_dir)
        settings = settings.model_copy(update={"secret_key": secret, "api_salt": secret})
    return settings


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        location = "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "invalid configuration: " + "; ".join(problems)


def _development_salt(var_dir: Path) -> str:
    path = var_dir / "api_salt"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_urlsafe(48)
    # Created with 0600 so other local users cannot read the secret that keys are hashed with.
    path.touch(mode=0o600)
    path.write_text(salt + "\n")
    return salt
