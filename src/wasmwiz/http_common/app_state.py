"""What `create_app` built, kept on the app's state for the adapters' dependency functions.

Handlers never see it whole: they name what they use (`ExecutionsDep`, `ApiKeysDep`,
`DatabaseSessionDep`... in http_common/dependencies.py). The execute route reads its
service and form reader with `app_state(request)`: two attribute reads on the busiest path
instead of two more dependencies to solve.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from wasmwiz.config import Settings
from wasmwiz.http_common.batch_form import BatchFormReader
from wasmwiz.http_common.execution_form import ExecutionFormReader
from wasmwiz.http_common.job_form import JobFormReader
from wasmwiz.http_common.lifecycle import Lifecycle
from wasmwiz.http_common.module_form import ModuleFormReader
from wasmwiz.observability.metrics import Metrics
from wasmwiz.persistence import Database
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.admin import AdminService
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.executions import ExecutionService
from wasmwiz.services.health import HealthService
from wasmwiz.services.jobs import JobService
from wasmwiz.services.login_throttle import LoginThrottle, SignupThrottle
from wasmwiz.services.rate_limits import ApiRequestLimit
from wasmwiz.services.stored_modules import StoredModules
from wasmwiz.services.usage_analytics import UsageAnalyticsService
from wasmwiz.services.usage_reports import UsageReportService
from wasmwiz.services.web_sessions import WebSessionService
from wasmwiz.services.webhooks import WebhookService


@dataclass(frozen=True, slots=True)
class AppState:
    """Built by the lifespan once its resources exist; `app.state.wasmwiz` while it runs."""

    settings: Settings
    metrics: Metrics
    database: Database
    executions: ExecutionService
    execution_form: ExecutionFormReader
    batch_form: BatchFormReader
    modules: StoredModules
    module_form: ModuleFormReader
    api_keys: ApiKeyService
    api_requests: ApiRequestLimit
    accounts: AccountService
    web_sessions: WebSessionService
    login_throttle: LoginThrottle
    signup_throttle: SignupThrottle
    usage_reports: UsageReportService
    usage_analytics: UsageAnalyticsService
    admin: AdminService
    health: HealthService
    jobs: JobService
    job_form: JobFormReader
    webhooks: WebhookService


def app_state(connection: HTTPConnection) -> AppState:
    state: AppState = connection.app.state.wasmwiz
    return state


def app_lifecycle(connection: HTTPConnection) -> Lifecycle:
    """Built with the app, before the lifespan: there from the first request on."""
    lifecycle: Lifecycle = connection.app.state.lifecycle
    return lifecycle
