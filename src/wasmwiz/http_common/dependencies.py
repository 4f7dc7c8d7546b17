"""The app's services as narrow FastAPI dependencies: each handler names what it uses.

Each reads one field of the typed `AppState`; they are `async` on purpose: FastAPI runs a
plain-def dependency on its thread pool, a thread hop per request for an attribute read
(bench/, docs/performance.md). The request's database session is `DatabaseSessionDep`
(http_common/unit_of_work.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from wasmwiz.config import Settings
from wasmwiz.http_common.app_state import app_lifecycle, app_state
from wasmwiz.http_common.execution_form import ExecutionFormReader
from wasmwiz.http_common.lifecycle import Lifecycle
from wasmwiz.observability.metrics import Metrics
from wasmwiz.persistence import Database
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.admin import AdminService
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.executions import ExecutionService
from wasmwiz.services.health import HealthService
from wasmwiz.services.login_throttle import LoginThrottle, SignupThrottle
from wasmwiz.services.usage_analytics import UsageAnalyticsService
from wasmwiz.services.usage_reports import UsageReportService
from wasmwiz.services.web_sessions import WebSessionService
from wasmwiz.services.webhooks import WebhookService


async def _settings(request: Request) -> Settings:
    return app_state(request).settings


async def _metrics(request: Request) -> Metrics:
    return app_state(request).metrics


async def _database(request: Request) -> Database:
    return app_state(request).database


async def _executions(request: Request) -> ExecutionService:
    return app_state(request).executions


async def _execution_form(request: Request) -> ExecutionFormReader:
    return app_state(request).execution_form


async def _api_keys(request: Request) -> ApiKeyService:
    return app_state(request).api_keys


async def _accounts(request: Request) -> AccountService:
    return app_state(request).accounts


async def _web_sessions(request: Request) -> WebSessionService:
    return app_state(request).web_sessions


async def _login_throttle(request: Request) -> LoginThrottle:
    return app_state(request).login_throttle


async def _signup_throttle(request: Request) -> SignupThrottle:
    return app_state(request).signup_throttle


async def _usage_reports(request: Request) -> UsageReportService:
    return app_state(request).usage_reports


async def _usage_analytics(request: Request) -> UsageAnalyticsService:
    return app_state(request).usage_analytics


async def _admin(request: Request) -> AdminService:
    return app_state(request).admin


async def _health(request: Request) -> HealthService:
    return app_state(request).health


async def _webhooks(request: Request) -> WebhookService:
    return app_state(request).webhooks


async def _lifecycle(request: Request) -> Lifecycle:
    return app_lifecycle(request)


# Only the few routes that read a setting no service holds (/metrics' token and port).
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
# The database itself, for the flows that keep short transactions of their own on purpose
# (password hashing outside any transaction: services/accounts.py).
DatabaseDep = Annotated[Database, Depends(_database)]
ExecutionsDep = Annotated[ExecutionService, Depends(_executions)]
ExecutionFormDep = Annotated[ExecutionFormReader, Depends(_execution_form)]
ApiKeysDep = Annotated[ApiKeyService, Depends(_api_keys)]
AccountsDep = Annotated[AccountService, Depends(_accounts)]
WebSessionsDep = Annotated[WebSessionService, Depends(_web_sessions)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(_login_throttle)]
SignupThrottleDep = Annotated[SignupThrottle, Depends(_signup_throttle)]
UsageReportsDep = Annotated[UsageReportService, Depends(_usage_reports)]
UsageAnalyticsDep = Annotated[UsageAnalyticsService, Depends(_usage_analytics)]
AdminDep = Annotated[AdminService, Depends(_admin)]
HealthDep = Annotated[HealthService, Depends(_health)]
LifecycleDep = Annotated[Lifecycle, Depends(_lifecycle)]
WebhooksDep = Annotated[WebhookService, Depends(_webhooks)]
