"""The ORM models: subscription tiers, users, API keys, the usage log, stored modules, jobs
and webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    func,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from wasmwiz.persistence.types import UTCDateTime, utcnow

__all__ = [
    "ApiKey",
    "Base",
    "Job",
    "JobPayload",
    "PublicRuntime",
    "SignupInvite",
    "SubscriptionTier",
    "UsageLog",
    "User",
    "WasmBlob",
    "WasmModule",
    "WasmModuleName",
    "WebSession",
    "WebhookCallbackSecret",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]

# Every constraint and index gets a deterministic name, so migrations can refer to them
# on every backend (SQLite batch mode needs names to drop or alter constraints).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created_at() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, server_default=func.now())


class SubscriptionTier(Base):
    __tablename__ = "subscription_tiers"
    # As migration 0003: a limit of 0 cannot be a quota (suspend with deactivation).
    __table_args__ = (
        CheckConstraint("requests_per_minute >= 1", name="requests_per_minute_positive"),
        CheckConstraint("requests_per_day >= 1", name="requests_per_day_positive"),
        CheckConstraint(
            "max_concurrent_executions >= 1", name="max_concurrent_executions_positive"
        ),
        CheckConstraint("max_fuel IS NULL OR max_fuel >= 1", name="max_fuel_positive"),
        # Migration 0004: the cap on an account's live API keys.
        CheckConstraint("max_api_keys >= 1", name="max_api_keys_positive"),
        # Migration 0007: CPU seconds of compiling per minute (docs/security.md).
        CheckConstraint(
            "compile_seconds_per_minute >= 1", name="compile_seconds_per_minute_positive"
        ),
        # Migration 0008: the storage quota for stored modules (0: none may be stored).
        CheckConstraint("max_stored_modules >= 0", name="max_stored_modules_not_negative"),
        CheckConstraint(
            "max_stored_module_bytes >= 0", name="max_stored_module_bytes_not_negative"
        ),
        # Migration 0010: the job limits.
        CheckConstraint("job_timeout_seconds >= 1", name="job_timeout_seconds_positive"),
        CheckConstraint("max_queued_jobs >= 0", name="max_queued_jobs_not_negative"),
        CheckConstraint("job_result_seconds >= 1", name="job_result_seconds_positive"),
        # Migration 0013: the tier's own request budget (NULL: the server's).
        CheckConstraint(
            "api_requests_per_minute IS NULL OR api_requests_per_minute >= 1",
            name="api_requests_per_minute_positive",
        ),
        CheckConstraint(
            "api_requests_per_day IS NULL OR api_requests_per_day >= 1",
            name="api_requests_per_day_positive",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    requests_per_day: Mapped[int] = mapped_column(Integer)
    max_concurrent_executions: Mapped[int] = mapped_column(Integer)
    max_fuel: Mapped[int | None] = mapped_column(BigInteger)
    max_api_keys: Mapped[int] = mapped_column(Integer, server_default="5")
    compile_seconds_per_minute: Mapped[int] = mapped_column(Integer, server_default="60")
    # 0 is a limit for these three (none may be stored, none may wait): "minimum" in info.
    max_stored_modules: Mapped[int] = mapped_column(
        Integer, server_default="100", info={"minimum": 0}
    )
    max_stored_module_bytes: Mapped[int] = mapped_column(
        BigInteger, server_default="524288000", info={"minimum": 0}
    )
    # Migration 0010: jobs (docs/jobs.md): a job's wall-clock limit, how many of the
    # account's jobs may wait, how long a result is kept.
    job_timeout_seconds: Mapped[int] = mapped_column(Integer, server_default="5")
    max_queued_jobs: Mapped[int] = mapped_column(Integer, server_default="10", info={"minimum": 0})
    job_result_seconds: Mapped[int] = mapped_column(Integer, server_default="3600")
    # Migration 0013: API calls and pages a minute and a day, per account (ApiRequestLimit);
    # NULL: the server's API_REQUESTS_PER_MINUTE and API_REQUESTS_PER_DAY.
    api_requests_per_minute: Mapped[int | None] = mapped_column(
        Integer, info={"null_means": "the server's API_REQUESTS_PER_MINUTE"}
    )
    api_requests_per_day: Mapped[int | None] = mapped_column(
        Integer, info={"null_means": "the server's API_REQUESTS_PER_DAY"}
    )
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    def __repr__(self) -> str:
        return f"SubscriptionTier(id={self.id!r}, name={self.name!r})"


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    tier_id: Mapped[int] = mapped_column(ForeignKey("subscription_tiers.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = _created_at()
    # Set when the account is deleted: the row stays, anonymised, for its usage records.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # lazy="raise": under asyncio an implicit lazy load cannot run; load explicitly.
    tier: Mapped[SubscriptionTier] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, email={self.email!r})"


class ApiKey(Base):
    __tablename__ = "api_keys"
    # As migration 0004: a key's own limits are lower bounds on top of its account's.
    __table_args__ = (
        CheckConstraint(
            "requests_per_minute IS NULL OR requests_per_minute >= 1",
            name="requests_per_minute_positive",
        ),
        CheckConstraint(
            "requests_per_day IS NULL OR requests_per_day >= 1", name="requests_per_day_positive"
        ),
        CheckConstraint(
            "max_concurrent_executions IS NULL OR max_concurrent_executions >= 1",
            name="max_concurrent_executions_positive",
        ),
        # As migration 0006: auth.HashScheme's values.
        CheckConstraint("hash_scheme IN (1, 2)", name="hash_scheme_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    # HMAC-SHA256 hex digest of the key under the server secret; the key itself is
    # never stored. Authentication is one lookup on this unique index.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # How key_hash was made (auth.HashScheme): 1, under the secret itself (keys from
    # before 0006, until first used); 2, under the key derived for this purpose.
    hash_scheme: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    created_at: Mapped[datetime] = _created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Space-separated scopes (services.principals.Scope); keys older than 0004 have all.
    scopes: Mapped[str] = mapped_column(String(200), server_default="execute usage:read keys:write")
    # The key's own lower limits, enforced on top of the account's; NULL: none of its own.
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    requests_per_day: Mapped[int | None] = mapped_column(Integer)
    max_concurrent_executions: Mapped[int | None] = mapped_column(Integer)

    user: Mapped[User] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, prefix={self.prefix!r})"


class UsageLog(Base):
    __tablename__ = "usage_logs"
    __table_args__ = (
        Index(None, "user_id", "created_at"),
        Index(None, "api_key_id", "created_at"),
        Index(None, "created_at"),
    )

    # The execution id: writing the same record twice leaves one row.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # NULL for runs from the web playground, which use no key.
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created_at()
    duration_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(32))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    module_size: Mapped[int] = mapped_column(Integer)
    module_sha256: Mapped[str] = mapped_column(String(64))
    input_size: Mapped[int] = mapped_column(Integer)
    output_size: Mapped[int] = mapped_column(Integer)
    stderr_size: Mapped[int] = mapped_column(Integer)
    memory_peak_bytes: Mapped[int] = mapped_column(BigInteger)
    # Migration 0012: NULL for a run without a fuel budget, which is not metered.
    fuel_consumed: Mapped[int | None] = mapped_column(BigInteger)
    # Migration 0008: the batch this run was a case of; NULL for a single run.
    batch_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    # Migration 0009: answered from the result cache, without a run; the figures are
    # those of the run whose result was served.
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def __repr__(self) -> str:
        return f"UsageLog(id={self.id!r}, status={self.status!r})"


class WebSession(Base):
    """A signed-in browser. Only a hash of the cookie's token is stored."""

    __tablename__ = "web_sessions"

    # SHA-256 hex of the session token: a leaked table cannot be replayed as cookies.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = _created_at()
    # Indexed (migration 0005): the periodic clean-up deletes by it.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    user: Mapped[User] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"WebSession(user_id={self.user_id!r})"


class SignupInvite(Base):
    """An invite code an admin made (SIGNUP_MODE=invite); used once. Only its hash is kept."""

    __tablename__ = "signup_invites"

    # SHA-256 hex of the code, as for web sessions: the code has 128 bits of entropy.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"SignupInvite(used_at={self.used_at!r})"


class WasmBlob(Base):
    """A stored module's bytes, once however many accounts stored them."""

    __tablename__ = "wasm_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()

    def __repr__(self) -> str:
        return f"WasmBlob(sha256={self.sha256!r}, size={self.size!r})"


class WasmModule(Base):
    """An account's stored module: which bytes, and what compiling them found."""

    __tablename__ = "wasm_modules"
    __table_args__ = (
        UniqueConstraint("user_id", "sha256"),
        Index(None, "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(ForeignKey("wasm_blobs.sha256"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    # JSON lists ({"module", "name", "kind"} and {"name", "kind"}), as the API shows them.
    imports: Mapped[str] = mapped_column(Text)
    exports: Mapped[str] = mapped_column(Text)
    is_command: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = _created_at()

    def __repr__(self) -> str:
        return f"WasmModule(user_id={self.user_id!r}, sha256={self.sha256!r})"


class WasmModuleName(Base):
    """A name an account points at one of its modules, and may move (like a registry tag)."""

    __tablename__ = "wasm_module_names"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    module_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("wasm_modules.id", ondelete="CASCADE"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, server_default=func.now()
    )

    def __repr__(self) -> str:
        return f"WasmModuleName(name={self.name!r}, module_id={self.module_id!r})"


class PublicRuntime(Base):
    """A module every account may run by name (`module=lua`): a language runtime."""

    __tablename__ = "public_runtimes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("wasm_blobs.sha256"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(64))
    # How a program reaches the runtime, e.g. "stdin": the program is the run's stdin.
    usage: Mapped[str] = mapped_column(Text)
    license: Mapped[str] = mapped_column(String(128))  # an SPDX expression
    published_at: Mapped[datetime] = _created_at()

    def __repr__(self) -> str:
        return f"PublicRuntime(name={self.name!r}, version={self.version!r})"


JOB_STATES = ("queued", "running", "finished", "failed", "cancelled", "expired")


class Job(Base):
    """A run accepted now and done later (migration 0010, services/jobs.py): the row is the
    job's truth; the task queue only says which row to look at."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'running', 'finished', 'failed', 'cancelled', 'expired')",
            name="state_known",
        ),
        Index(None, "user_id", "created_at"),
        Index(None, "user_id", "state"),
        Index(None, "state", "lease_until"),
        Index(None, "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created_at()
    # When its message was last put on the queue: a queued job whose message is older than
    # the process that sweeps may have lost it, and is enqueued again.
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the result is removed (the job becomes `expired`).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A running job's claim: renewed while it runs; past it, the run is taken for dead.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    timeout_seconds: Mapped[float] = mapped_column(Float)
    result_seconds: Mapped[int] = mapped_column(Integer)
    input_size: Mapped[int] = mapped_column(Integer)
    # The bytes of its payload: what the account's waiting jobs hold is bounded.
    payload_size: Mapped[int] = mapped_column(Integer)
    callback_url: Mapped[str | None] = mapped_column(Text)
    # The usage record of its run, written in the transaction that finished the job.
    execution_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    cached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    result: Mapped[bytes | None] = mapped_column(LargeBinary)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, state={self.state!r})"


class JobPayload(Base):
    """What a queued job's run needs (services/job_payload.py), deleted when the job ends."""

    __tablename__ = "job_payloads"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)


class WebhookEndpoint(Base):
    """An account's webhook endpoint (migration 0011, services/webhooks/): its signing
    secret is derived from `secret_salt` and SECRET_KEY, never stored."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(200))
    # Space-separated event types, in the order of services/webhooks/events.py.
    events: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()
    # Deliveries in a row that failed every attempt; a success sets it back to 0.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when the service disabled it for failing (not when its owner did).
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"WebhookEndpoint(id={self.id!r}, enabled={self.enabled!r})"


class WebhookEvent(Base):
    """Something that happened to an account, with its payload as sent."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("user_id", "dedupe_key"), Index(None, "created_at"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # An event told once per account and key (a quota warning once a UTC day).
    dedupe_key: Mapped[str | None] = mapped_column(String(64))


WEBHOOK_DELIVERY_STATES = ("pending", "delivering", "succeeded", "failed")


class WebhookDelivery(Base):
    """One event to one endpoint, or to a job's callback URL (endpoint_id null)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'delivering', 'succeeded', 'failed')", name="state_known"
        ),
        Index(None, "endpoint_id", "created_at"),
        Index(None, "state", "next_attempt_at"),
        Index(None, "event_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # A job's callback URL; an endpoint's delivery goes to the endpoint's URL of the moment.
    url: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Pending: when it is due. Delivering: when its attempt is taken for dead.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class WebhookCallbackSecret(Base):
    """The salt of an account's callback secret (jobs' callback_url), once rotated."""

    __tablename__ = "webhook_callback_secrets"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created_at()
