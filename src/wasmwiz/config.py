"""Settings read from the environment (and `.env`), validated once at start-up."""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
DEFAULT_VAR_DIR = Path("var")
MIN_API_SALT_LENGTH = 32


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

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    server_host: str = "127.0.0.1"
    server_port: Annotated[int, Field(ge=1, le=65535)] = 8080

    var_dir: Path = DEFAULT_VAR_DIR
    database_url: str = ""
    api_salt: str = ""

    wasm_temp_dir: Path | None = None
    max_wasm_size: PositiveInt = 10 * MiB
    max_input_size: PositiveInt = 1 * MiB
    max_output_size: PositiveInt = 1 * MiB
    execution_timeout: Annotated[float, Field(gt=0, le=300)] = 5.0
    memory_limit: Annotated[int, Field(ge=64 * 1024)] = 128 * MiB
    max_concurrent_executions: PositiveInt = 4
    max_queued_executions: Annotated[int, Field(ge=0)] = 64
    compiled_cache_max_bytes: PositiveInt = 256 * MiB

    rate_limit_backend: RateLimitBackend = RateLimitBackend.MEMORY
    redis_url: str | None = None
    rate_limit_fail_mode: FailMode = FailMode.CLOSED
    tier_cache_seconds: Annotated[float, Field(ge=0)] = 30.0

    usage_flush_interval: Annotated[float, Field(gt=0)] = 0.5
    usage_batch_size: PositiveInt = 500

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        if self.rate_limit_backend is RateLimitBackend.REDIS and not self.redis_url:
            raise ValueError("REDIS_URL must be set when RATE_LIMIT_BACKEND=redis")
        if self.environment is Environment.PRODUCTION and len(self.api_salt) < MIN_API_SALT_LENGTH:
            raise ValueError(
                f"API_SALT must be set to a secret of at least {MIN_API_SALT_LENGTH} characters "
                "when ENVIRONMENT=production"
            )
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.var_dir / 'wasmwiz.db').resolve()}"

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
