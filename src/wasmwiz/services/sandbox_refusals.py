"""The sandbox's refusals as the domain's errors, for every use case that runs or compiles."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from wasmwiz import errors
from wasmwiz.observability.metrics import Metrics
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox import ModuleRefused, SandboxBusy
from wasmwiz.sandbox.compile_account import CompileBudgetExceeded
from wasmwiz.sandbox.models import FilesBudgetSpent
from wasmwiz.services.principals import Principal

_TOO_LARGE_CODES = {ProblemCode.WASM_TOO_LARGE}
_BUSY_RETRY_AFTER = 1


@contextmanager
def sandbox_refusals(
    principal: Principal, headers: Mapping[str, str], metrics: Metrics
) -> Iterator[None]:
    """Turns the sandbox's refusals (of a module, of a compile over the account's budget,
    of a run when every slot is busy) into the domain's errors, counted, with `headers`
    (the admission's budgets) on each."""
    try:
        yield
    except ModuleRefused as exc:
        metrics.rejections.labels(exc.code).inc()
        error_type = (
            errors.PayloadTooLarge if exc.code in _TOO_LARGE_CODES else errors.ModuleRejected
        )
        raise error_type(exc.message, code=exc.code, headers=headers) from None
    except CompileBudgetExceeded as exc:
        metrics.rejections.labels(ProblemCode.COMPILE_BUDGET_EXCEEDED).inc()
        raise errors.LimitExceeded(
            f"This account has used its {principal.tier.compile_seconds_per_minute} "
            f"seconds a minute of compiling new modules; retry in {exc.retry_after} s "
            "(modules already compiled still run).",
            code=ProblemCode.COMPILE_BUDGET_EXCEEDED,
            headers={**headers, "Retry-After": str(exc.retry_after)},
            retry_after=exc.retry_after,
        ) from None
    except SandboxBusy as busy:
        metrics.rejections.labels(ProblemCode.SERVER_BUSY).inc()
        raise errors.ServiceUnavailable(
            str(busy)
            if isinstance(busy, FilesBudgetSpent)
            else "Every execution slot is busy; try again shortly.",
            code=ProblemCode.SERVER_BUSY,
            headers={**headers, "Retry-After": str(_BUSY_RETRY_AFTER)},
            retry_after=_BUSY_RETRY_AFTER,
        ) from None
