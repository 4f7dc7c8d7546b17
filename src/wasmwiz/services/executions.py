"""The execute use case: admit, run in the sandbox, record usage, report."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from wasmwiz import errors
from wasmwiz.observability.metrics import Metrics
from wasmwiz.persistence.repositories.usage_logs import UsageRecord
from wasmwiz.sandbox import Limits, ModuleRejected, RunRequest, RunResult, Sandbox, SandboxBusy
from wasmwiz.services.principals import Principal
from wasmwiz.services.rate_limits import Admission, AdmissionGate
from wasmwiz.services.usage_recorder import UsageRecorder

_TOO_LARGE_CODES = {"wasm_too_large"}
_BUSY_RETRY_AFTER = 1


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    wasm: bytes
    stdin: bytes = b""
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    program_name: str = "main.wasm"
    deterministic: bool = False
    seed: int = 0
    max_fuel: int | None = None  # the caller's budget; the tier's max_fuel caps it


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    execution_id: uuid.UUID
    result: RunResult
    admission: Admission


class ExecutionService:
    def __init__(
        self,
        sandbox: Sandbox,
        gate: AdmissionGate,
        recorder: UsageRecorder,
        limits: Limits,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._metrics = metrics
        self._sandbox = sandbox
        self._gate = gate
        self._recorder = recorder
        self._limits = limits
        self._clock = clock

    def _limits_for(self, principal: Principal, request: ExecutionRequest) -> Limits:
        """The service's limits with the fuel budget: the caller's, capped by the tier's."""
        budgets = [fuel for fuel in (request.max_fuel, principal.tier.max_fuel) if fuel]
        if not budgets:
            return self._limits
        return replace(self._limits, max_fuel=min(budgets))

    async def execute(self, principal: Principal, request: ExecutionRequest) -> ExecutionReport:
        async with self._gate.admit(principal) as admission:
            started_at = self._clock()
            try:
                result = await self._sandbox.execute(
                    request.wasm,
                    RunRequest(
                        stdin=request.stdin,
                        args=tuple(request.args),
                        env=tuple(request.env.items()),
                        program_name=request.program_name,
                        deterministic=request.deterministic,
                        seed=request.seed,
                    ),
                    self._limits_for(principal, request),
                )
            except ModuleRejected as exc:
                self._metrics.rejections.labels(exc.code).inc()
                error_type = (
                    errors.PayloadTooLarge
                    if exc.code in _TOO_LARGE_CODES
                    else errors.ModuleRejected
                )
                raise error_type(exc.message, code=exc.code, headers=admission.headers) from None
            except SandboxBusy:
                self._metrics.rejections.labels("server_busy").inc()
                raise errors.ServiceUnavailable(
                    "Every execution slot is busy; try again shortly.",
                    code="server_busy",
                    headers={**admission.headers, "Retry-After": str(_BUSY_RETRY_AFTER)},
                    retry_after=_BUSY_RETRY_AFTER,
                ) from None

        self._metrics.executions.labels(result.outcome.value, principal.tier.name).inc()
        self._metrics.execution_duration.observe(result.duration_seconds)
        self._metrics.execution_fuel.observe(result.fuel_consumed)
        execution_id = uuid.uuid4()
        self._recorder.record(
            UsageRecord(
                id=execution_id,
                user_id=principal.user_id,
                api_key_id=principal.api_key_id,
                created_at=started_at,
                duration_ms=result.duration_seconds * 1000,
                status=result.outcome.value,
                exit_code=result.exit_code,
                error=result.error,
                module_size=result.module_size,
                module_sha256=result.module_sha256,
                input_size=len(request.stdin),
                output_size=len(result.stdout),
                stderr_size=len(result.stderr),
                memory_peak_bytes=result.memory_peak_bytes,
                fuel_consumed=result.fuel_consumed,
            )
        )
        return ExecutionReport(execution_id=execution_id, result=result, admission=admission)
