"""Settings read from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import ipaddress
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
DEFAULT_VAR_DIR = Path("var")
MIN_API_SALT_LENGTH = 32
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


class ConfigurationError(Exception):
    """The settings cannot be used; the message names the offending variable."""


PositiveInt = Annotated[int, Field(gt=0)]


class Settings(BaseSettings):
    """Every knob of the service. See docs/configuration.md for what each one does."""

    # An empty variable (`METRICS_PORT=` as in .env.example) means "not set": the default.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    server_host: str = "127.0.0.1"
    server_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    # Production operations (docs/operations.md): serving, proxies, limits, lifecycle.
    debug: bool = False
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    https_redirect: bool = False
    hsts_max_age: Annotated[int, Field(ge=0)] = 31_536_000
    trusted_proxies: str = ""
    request_body_timeout: Annotated[float, Field(gt=0)] = 30.0
    max_request_body_size: PositiveInt | None = None
    max_header_size: Annotated[int, Field(ge=1024)] = 16 * 1024
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
    api_salt: str = ""

    wasm_temp_dir: Path | None = None
    max_wasm_size: PositiveInt = 10 * MiB
    max_input_size: PositiveInt = 1 * MiB
    max_output_size: PositiveInt = 1 * MiB
    execution_timeout: Annotated[float, Field(gt=0, le=300)] = 5.0
    memory_limit: Annotated[int, Field(ge=64 * 1024)] = 128 * MiB
    # Together at most the sandbox's WorkerPool.MAX_CAPACITY (4096).
    max_concurrent_executions: Annotated[int, Field(ge=1, le=256)] = 4
    max_queued_executions: Annotated[int, Field(ge=0, le=3840)] = 64
    compiled_cache_max_bytes: PositiveInt = 256 * MiB
    # Compilation (docs/security.md): a worker process per compile, bounded from outside.
    compile_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    compile_memory_limit: Annotated[int, Field(ge=256 * MiB)] = 2048 * MiB
    compile_workers: Annotated[int, Field(ge=1, le=64)] = 2
    compiled_cache_dir: Path | None = None
    compiled_cache_disk_max_bytes: Annotated[int, Field(ge=0)] = 1024 * MiB
    # Pre-compile inspection: modules declaring more are refused before compiling.
    max_wasm_functions: PositiveInt = 100_000
    max_function_locals: PositiveInt = 10_000
    max_function_body_size: PositiveInt = 1 * MiB
    max_data_segments: PositiveInt = 100_000

    rate_limit_backend: RateLimitBackend = RateLimitBackend.MEMORY
    redis_url: str | None = None
    rate_limit_fail_mode: FailMode = FailMode.CLOSED
    # How stale an authenticated key may be here after a change made elsewhere (key_cache).
    api_key_cache_seconds: Annotated[float, Field(ge=0, le=30)] = 5.0

    usage_flush_interval: Annotated[float, Field(gt=0)] = 0.5
    usage_batch_size: PositiveInt = 500

    session_lifetime_hours: Annotated[float, Field(gt=0, le=24 * 90)] = 24 * 7
    login_attempts_per_minute: PositiveInt = 5
    login_attempts_per_ip_per_minute: PositiveInt = 30

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        if self.rate_limit_backend is RateLimitBackend.REDIS and not self.redis_url:
            raise ValueError("REDIS_URL must be set when RATE_LIMIT_BACKEND=redis")
        if self.environment is Environment.PRODUCTION and len(self.api_salt) < MIN_API_SALT_LENGTH:
            raise ValueError(
                f"API_SALT must be set to a secret of at least {MIN_API_SALT_LENGTH} characters "
                "when ENVIRONMENT=production"
            )
        self._check_operations()
        if self.workers > 1 and self.rate_limit_backend is RateLimitBackend.MEMORY:
            # Each process would keep its own buckets, quotas and slots: N times every limit.
            raise ValueError(
                "WORKERS > 1 needs RATE_LIMIT_BACKEND=redis, so the processes share one set "
                "of limits; or run one worker (it uses every core for wasm through threads)"
            )
        return self

    def _check_operations(self) -> None:
        self.trusted_proxy_networks  # noqa: B018 - raises ValueError naming a bad entry
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("TLS_CERTFILE and TLS_KEYFILE must be set together")
        if self.metrics_port is not None and self.workers > 1:
            raise ValueError("METRICS_PORT cannot be used with WORKERS > 1: each would bind it")
        if self.environment is not Environment.PRODUCTION:
            return
        # Refused in production because each one is unsafe there, not merely unusual.
        if any(marker in self.api_salt.lower() for marker in _PLACEHOLDER_SECRETS):
            raise ValueError("API_SALT is a placeholder value; generate a random secret")
        if self.debug:
            raise ValueError("DEBUG must be off when ENVIRONMENT=production")
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
        return self.max_request_body_size or self.max_wasm_size + self.max_input_size + MiB

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
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning validation errors into one readable message.

    Outside production a missing API_SALT is generated once and kept under VAR_DIR, so
    keys created in one run still work in the next.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None
    if not settings.api_salt:
        settings = settings.model_copy(update={"api_salt": _development_salt(settings.var_dir)})
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
