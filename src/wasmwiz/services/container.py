"""The services and resources one running app owns, built together in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from wasmwiz.config import Settings
from wasmwiz.observability.metrics import Metrics
from wasmwiz.persistence import Database
from wasmwiz.ratelimit import RateLimiter
from wasmwiz.sandbox import Sandbox
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.admin import AdminService
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.executions import ExecutionService
from wasmwiz.services.health import HealthService
from wasmwiz.services.login_throttle import LoginThrottle, SignupThrottle
from wasmwiz.services.rate_limits import AdmissionGate
from wasmwiz.services.usage_recorder import UsageRecorder
from wasmwiz.services.usage_reports import UsageReportService
from wasmwiz.services.web_sessions import WebSessionService


@dataclass(slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    database: Database
    sandbox: Sandbox
    limiter: RateLimiter
    gate: AdmissionGate
    recorder: UsageRecorder
    executions: ExecutionService
    api_keys: ApiKeyService
    health: HealthService
    accounts: AccountService
    web_sessions: WebSessionService
    login_throttle: LoginThrottle
    signup_throttle: SignupThrottle
    usage_reports: UsageReportService
    admin: AdminService
