"""The execute use case: admit, run in the sandbox, record usage, report."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

from opentelemetry import trace

from wasmwiz import errors
from wasmwiz.observability.metrics import Metrics
from wasmwiz.observability.tracing import use_case_span
from wasmwiz.persistence.repositories.usage_logs import UsageRecord
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox import (
    CompiledModule,
    Limits,
    Outcome,
    RunRequest,
    RunResult,
    Sandbox,
    SandboxBusy,
    StageTimes,
)
from wasmwiz.sandbox.compile_account import CompileAccount
from wasmwiz.sandbox.file_input import InputEntry
from wasmwiz.services.batches import BatchReport, BatchRequest, ModuleSource
from wasmwiz.services.compile_budgets import CompileBudgets
from wasmwiz.services.principals import Principal
from wasmwiz.services.rate_limits import AdmissionGate, AdmittedRequest
from wasmwiz.services.result_cache import ResultCache, covers, module_digest
from wasmwiz.services.run_spans import draw_stages
from wasmwiz.services.sandbox_refusals import sandbox_refusals
from wasmwiz.services.stored_modules import StoredModules
from wasmwiz.services.usage_recorder import UsageRecorder

_Outcome = TypeVar("_Outcome")  # what a sandbox call under `_with_stage_spans` gives back

_BUSY_WAIT_SECONDS = 0.05
# How long a batch keeps a sandbox worker before it lets other accounts' runs in.
_BATCH_SLICE_SECONDS = 0.05
# Runs at least this long on average go side by side on several threads.
_PARALLEL_RUN_SECONDS = 0.002
# At most this many of a batch's cases run at once, however many slots the account has.
_MAX_BATCH_WORKERS = 64


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    wasm: bytes | memoryview | None  # a view of the form's buffer, not a copy
    module: str | None = None  # or a stored module's id or name (services.stored_modules)
    stdin: bytes | memoryview = b""
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    program_name: str = "main.wasm"
    deterministic: bool = False
    seed: int | None = None  # None: not sent; the run's seed is 0, and it is not cached
    max_fuel: int | None = None  # the caller's budget; the tier's max_fuel caps it
    # The run's directory (sandbox.RunRequest.files) and what to return of it.
    files: tuple[InputEntry, ...] | None = None
    collect: tuple[str, ...] = ()
    # False: neither answered from the result cache nor kept in it.
    cache: bool = True
    # A job's wall-clock limit (its tier's, services/jobs.py); None: the service's.
    timeout_seconds: float | None = None

    @property
    def cacheable(self) -> bool:
        """Asks for the result cache: deterministic, with an explicit seed, and not opted
        out (result_cache.covers has the sandbox's own conditions)."""
        return self.cache and self.deterministic and self.seed is not None


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    execution_id: uuid.UUID
    result: RunResult
    admission: AdmittedRequest
    cached: bool = False  # answered from the result cache: nothing ran


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
        compile_budgets: CompileBudgets | None = None,
        modules: StoredModules | None = None,
        batch_timeout: float = 60.0,
        results: ResultCache | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._tracer = tracer
        self._batch_timeout = batch_timeout
        self._results = results
        self._compile_budgets = compile_budgets
        self._modules = modules
        self._metrics = metrics
        self._sandbox = sandbox
        self._gate = gate
        self._recorder = recorder
        self._limits = limits
        self._clock = clock

    @property
    def limits(self) -> Limits:
        """A run's limits before a caller's or tier's fuel budget."""
        return self._limits

    @property
    def sandbox(self) -> Sandbox:
        return self._sandbox

    @property
    def gate(self) -> AdmissionGate:
        return self._gate

    def _limits_for(
        self, principal: Principal, max_fuel: int | None, timeout_seconds: float | None = None
    ) -> Limits:
        """The service's limits with the fuel budget (the caller's, capped by the tier's)
        and a job's own wall-clock limit."""
        limits = self._limits
        if timeout_seconds is not None:
            limits = replace(limits, timeout_seconds=timeout_seconds)
        budgets = [fuel for fuel in (max_fuel, principal.tier.max_fuel) if fuel]
        if not budgets:
            return limits
        return replace(limits, max_fuel=min(budgets))

    def _compile_account(self, principal: Principal) -> CompileAccount | None:
        if self._compile_budgets is None:
            return None
        return self._compile_budgets.account_for(principal)

    async def check_module(self, principal: Principal, request: ExecutionRequest) -> None:
        """Refuse now (404 `module_not_found`) a stored-module reference the account cannot
        run, as a synchronous run would: for a request run later (a job)."""
        await self._stored_sha256(principal, request)

    async def _stored_sha256(self, principal: Principal, request: ExecutionRequest) -> str | None:
        """The digest of the stored module the request names (None for uploaded bytes), or
        404 `module_not_found` for a reference the account cannot run."""
        if request.module is None:
            return None
        return await self._resolve_stored(principal, request.module)

    async def _resolve_stored(self, principal: Principal, reference: str) -> str:
        """The digest of the stored module `reference` names, or 404 `module_not_found`."""
        if self._modules is None:
            raise errors.NotFound("No stored modules here.", code=ProblemCode.MODULE_NOT_FOUND)
        return (await self._modules.resolve(principal, reference)).sha256

    @property
    def results(self) -> ResultCache | None:
        return self._results

    async def _run(self, principal: Principal, request: ExecutionRequest) -> tuple[RunResult, bool]:
        """The run's result, and whether it came from the result cache."""
        run = RunRequest(
            stdin=request.stdin,
            args=tuple(request.args),
            env=tuple(request.env.items()),
            program_name=request.program_name,
            deterministic=request.deterministic,
            seed=request.seed or 0,
            files=request.files,
            collect=request.collect,
        )
        limits = self._limits_for(principal, request.max_fuel, request.timeout_seconds)
        # Resolved before the cache is asked: a reference the account cannot use is refused
        # whether or not its result is cached.
        stored_sha256 = await self._stored_sha256(principal, request)
        key = None
        if self._results is not None and request.cacheable and covers(run):
            digest = stored_sha256
            if digest is None:
                assert request.wasm is not None  # the form has one or the other
                digest = await module_digest(request.wasm)
            key = await self._results.key(principal.user_id, digest, run, limits)
            cached = await self._results.recall(key)
            trace.get_current_span().set_attribute("wasmwiz.result_cache.hit", cached is not None)
            if cached is not None:
                return cached, True
        result = await self._execute(principal, request, run, limits, stored_sha256)
        if key is not None and self._results is not None:
            await self._results.remember(key, result)
        return result, False

    async def _execute(
        self,
        principal: Principal,
        request: ExecutionRequest,
        run: RunRequest,
        limits: Limits,
        stored_sha256: str | None,
    ) -> RunResult:
        # Runs and compiles waiting for the sandbox take turns by account.
        account = principal.rate_limit_key
        compile_account = self._compile_account(principal)

        async def sandbox_run(stages: StageTimes | None) -> RunResult:
            if stored_sha256 is not None:
                assert self._modules is not None
                return await self._sandbox.execute_stored(
                    stored_sha256,
                    self._modules.loader(stored_sha256),
                    run,
                    limits,
                    account=account,
                    compile_account=compile_account,
                    stages=stages,
                )
            assert request.wasm is not None  # the form has one or the other
            return await self._sandbox.execute(
                request.wasm,
                run,
                limits,
                account=account,
                compile_account=compile_account,
                stages=stages,
            )

        return await self._with_stage_spans(sandbox_run, lambda result: result)

    async def _with_stage_spans(
        self,
        work: Callable[[StageTimes | None], Awaitable[_Outcome]],
        run_of: Callable[[_Outcome], RunResult | None],
    ) -> _Outcome:
        """`work` given a StageTimes to fill when tracing is on, its stages drawn as spans
        after (`run_of` names the run its outcome holds, if any); with tracing off, nothing."""
        if self._tracer is None:
            return await work(None)
        stages = StageTimes()
        try:
            outcome = await work(stages)
        except BaseException as exc:
            draw_stages(self._tracer, stages, None, exc)
            raise
        draw_stages(self._tracer, stages, run_of(outcome))
        return outcome

    async def run_admitted(
        self, principal: Principal, request: ExecutionRequest
    ) -> tuple[RunResult, bool]:
        """Run a request admitted earlier (a job's: services/jobs.py): the result and
        whether it came from the result cache. Counted in the metrics like any run; the
        caller records its usage (`usage_record`). The sandbox's refusals are the domain's
        errors, as for a request."""
        with sandbox_refusals(principal, {}, self._metrics):
            result, cached = await self._run(principal, request)
        if not cached:
            self._count(principal, [result])
        return result, cached

    async def execute(self, principal: Principal, request: ExecutionRequest) -> ExecutionReport:
        """Admit and run a request that was already read."""
        return await self.admit_then_execute(principal, lambda: _already_read(request))

    async def admit_then_execute(
        self, principal: Principal, read: Callable[[], Awaitable[ExecutionRequest]]
    ) -> ExecutionReport:
        """Admit first, then `read` the request and run it, holding the concurrency slot
        throughout: a caller over its rate, quota or concurrency is refused before the
        server reads (and buffers) its body. A request that cannot be read has spent its
        admission and gives the slot back; only runs are recorded."""
        with use_case_span(self._tracer, "wasmwiz.execute") as span:
            report = await self._admit_then_execute(principal, read)
            if span.is_recording():
                span.set_attributes(
                    {
                        "wasmwiz.execution.id": str(report.execution_id),
                        "wasmwiz.run.outcome": report.result.outcome.value,
                        "wasmwiz.result_cache.hit": report.cached,
                    }
                )
            return report

    async def _admit_then_execute(
        self, principal: Principal, read: Callable[[], Awaitable[ExecutionRequest]]
    ) -> ExecutionReport:
        async with self._gate.admit(principal) as admission:
            try:
                request = await read()
            except errors.WasmWizError as exc:
                # The refusal reports the budgets this request spent, as a run's does.
                exc.headers = {**admission.headers, **exc.headers}
                raise
            started_at = self._clock()
            with sandbox_refusals(principal, admission.headers, self._metrics):
                result, cached = await self._run(principal, request)

        if not cached:  # a cached answer is no run: recorded (it counts), not measured
            self._count(principal, [result])
        execution_id = self._record(
            principal, started_at, len(request.stdin), result, cached=cached
        )
        return ExecutionReport(
            execution_id=execution_id, result=result, admission=admission, cached=cached
        )

    def _count(self, principal: Principal, results: Iterable[RunResult]) -> None:
        """Count runs in the metrics: each outcome's counter once, however many had it."""
        outcomes: collections.Counter[str] = collections.Counter()
        for result in results:
            outcomes[result.outcome.value] += 1
            self._metrics.execution_duration.observe(result.duration_seconds)
            if result.fuel_consumed is not None:  # only runs with a budget count fuel
                self._metrics.execution_fuel.observe(result.fuel_consumed)
        for outcome, runs in outcomes.items():
            self._metrics.executions.labels(outcome, principal.tier.name).inc(runs)

    def _record(
        self,
        principal: Principal,
        started_at: datetime,
        input_size: int,
        result: RunResult,
        batch_id: uuid.UUID | None = None,
        *,
        cached: bool = False,
    ) -> uuid.UUID:
        """Hand a run's usage record to the recorder; returns the run's execution id."""
        record = usage_record(
            principal, started_at, input_size, result, batch_id=batch_id, cached=cached
        )
        # The recorder writes it with others in a batch, soon: that write's span
        # (`wasmwiz.usage.write`) links to this one. A batch's cases have no span each.
        tracer = self._tracer if batch_id is None else None
        with use_case_span(tracer, "wasmwiz.usage.record") as span:
            if span.is_recording():
                span.set_attribute("wasmwiz.execution.id", str(record.id))
            self._recorder.record(record)
        return record.id

    async def admit_then_run_batch(
        self, principal: Principal, read: Callable[[], Awaitable[BatchRequest]]
    ) -> BatchReport:
        """Run every case of a batch against one module, compiled once.

        A principal with no run left is refused before the body is read; once read (the
        number of cases known, every case checked), the batch is admitted all or nothing:
        each case one run of the rate and the daily quota, the batch one slot, plus as many
        more of the account's free slots as there are cases to run side by side. Each case
        has a run's own limits, the whole batch `batch_timeout` seconds: a case not started
        by then ends `timeout` without running. One usage record per case."""
        with use_case_span(self._tracer, "wasmwiz.batch") as span:
            report = await self._admit_then_run_batch(principal, read)
            if span.is_recording():
                span.set_attributes(
                    {
                        "wasmwiz.batch.id": str(report.batch_id),
                        "wasmwiz.batch.cases": len(report.results),
                    }
                )
            return report

    async def _admit_then_run_batch(
        self, principal: Principal, read: Callable[[], Awaitable[BatchRequest]]
    ) -> BatchReport:
        await self._gate.refuse_without_room(principal)
        batch = await read()
        async with self._gate.admit(principal, cost=len(batch.cases)) as admission:
            extra: list[list[str]] = []

            async def more_slots(wanted: int) -> int:
                # Taken only when the batch goes side by side, so a batch of short runs
                # on one thread holds one slot, not every free one of the account.
                extra.extend(await self._gate.extra_slots(principal, wanted))
                return len(extra)

            # One module for all cases, compiled for the engine their limits need.
            limits = self._limits_for(principal, batch.options.max_fuel)
            try:
                with sandbox_refusals(principal, admission.headers, self._metrics):
                    compiled = await self._prepare(principal, batch.module, limits)
                    results = await self._run_cases(principal, batch, compiled, limits, more_slots)
            finally:
                await self._gate.release_extra_slots(principal, extra)
        self._count(principal, (result for _, result in results))
        batch_id = uuid.uuid4()
        ids = [
            self._record(principal, started_at, len(case.stdin), result, batch_id)
            for case, (started_at, result) in zip(batch.cases, results, strict=True)
        ]
        return BatchReport(
            batch_id, [(i, r) for i, (_, r) in zip(ids, results, strict=True)], admission
        )

    async def _prepare(
        self, principal: Principal, module: ModuleSource, limits: Limits
    ) -> CompiledModule:
        """A batch's module, compiled once (in a `wasmwiz.prepare` span; its runs have
        none of their own: the batch's span counts them)."""
        compile_account = self._compile_account(principal)
        account = principal.rate_limit_key
        sha256 = await self._resolve_stored(principal, module) if isinstance(module, str) else None

        async def prepare(stages: StageTimes | None) -> CompiledModule:
            if sha256 is not None:
                assert self._modules is not None
                return await self._sandbox.prepare_stored_async(
                    sha256,
                    self._modules.loader(sha256),
                    limits,
                    account=account,
                    compile_account=compile_account,
                    stages=stages,
                )
            assert not isinstance(module, str)
            return await self._sandbox.prepare_async(
                module, limits, account=account, compile_account=compile_account, stages=stages
            )

        return await self._with_stage_spans(prepare, lambda _compiled: None)

    async def _run_cases(
        self,
        principal: Principal,
        batch: BatchRequest,
        compiled: CompiledModule,
        limits: Limits,
        more_slots: Callable[[int], Awaitable[int]],
    ) -> list[tuple[datetime, RunResult]]:
        """Run the cases on one of the sandbox's workers, or on as many as `more_slots`
        gets the account slots for, besides the batch's own, once runs prove long (below).
        Each worker takes
        the next case from one shared queue and runs cases one after another for a slice
        of time, then gives its worker back to the fair queue (other accounts' runs go
        between slices) and asks for another: a case costs one run, not a thread hop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._batch_timeout
        waiting = collections.deque(enumerate(batch.cases))
        taken_at: list[datetime | None] = [None] * len(batch.cases)
        finished: list[RunResult | None] = [None] * len(batch.cases)

        def take() -> tuple[int, RunRequest] | None:
            # On a sandbox worker thread; a deque's popleft is atomic across threads.
            if loop.time() >= deadline:
                return None
            try:
                index, case = waiting.popleft()
            except IndexError:
                return None
            taken_at[index] = self._clock()
            return index, RunRequest(
                stdin=case.stdin,
                args=tuple(case.args),
                env=tuple(case.env.items()),
                program_name=batch.program_name,
                deterministic=batch.options.deterministic,
                seed=batch.options.seed,
                files=batch.options.files,
                collect=batch.options.collect,
            )

        def give_back(index: int) -> None:
            # On a sandbox worker thread: a case the server had no room for did not run;
            # it goes back to the front, to be taken again after the wait below.
            taken_at[index] = None
            waiting.appendleft((index, batch.cases[index]))

        first_slice = [0.0, 0]  # when it began (on the worker thread), and runs it took

        def take_while_short() -> tuple[int, RunRequest] | None:
            # The first slice ends once its runs average 2 ms or more, the first of them
            # long enough alone: then the loop decides whether they go side by side. Short
            # runs go on to the end of the slice with no hop back here to decide.
            began_at, runs = first_slice
            if runs and (loop.time() - began_at) / runs >= _PARALLEL_RUN_SECONDS:
                return None
            if not runs:
                first_slice[0] = loop.time()
            item = take()
            first_slice[1] += item is not None
            return item

        began = loop.time()
        timed = [0, 0.0]  # runs done, and the seconds those runs took
        helpers: list[asyncio.Future[None]] = []
        widening: list[bool] = []

        async def join_if_long() -> None:
            # Short runs are mostly Python under the GIL: a second thread would only take
            # turns with the first (100 hello-worlds took twice as long on two). Runs that
            # prove long (guest code, which runs without the GIL) get the others, up to
            # the account's free slots: on an average of 2 ms or more, or a first run still
            # going after two slices. Asked once. A run's own time, not its slice's: on a
            # busy machine the hop to a worker thread and back alone can take 2 ms.
            runs, seconds = timed
            long = (runs and seconds / runs >= _PARALLEL_RUN_SECONDS) or (
                not runs and loop.time() - began >= 2 * _BATCH_SLICE_SECONDS
            )
            if long and not widening and len(waiting) > 0:
                widening.append(True)
                others = await more_slots(min(len(waiting), _MAX_BATCH_WORKERS - 1))
                helpers.extend(asyncio.ensure_future(worker()) for _ in range(others))

        async def worker(next_take: Callable[[], tuple[int, RunRequest] | None] = take) -> None:
            while waiting and loop.time() < deadline:
                try:
                    ran = await self._sandbox.run_series(
                        compiled,
                        next_take,
                        give_back,
                        limits,
                        account=principal.rate_limit_key,
                        slice_seconds=_BATCH_SLICE_SECONDS,
                    )
                except SandboxBusy:
                    # The server's queue is full: a batch waits its turn, within its budget.
                    await asyncio.sleep(_BUSY_WAIT_SECONDS)
                    continue
                next_take = take
                timed[0] += len(ran)
                timed[1] += sum(result.duration_seconds for _, result in ran)
                for index, result in ran:
                    finished[index] = result
                await join_if_long()

        first = asyncio.ensure_future(worker(take_while_short))
        while len(batch.cases) > 1 and not widening and not first.done():
            await asyncio.wait([first], timeout=2 * _BATCH_SLICE_SECONDS)
            await join_if_long()
        await first
        while helpers:  # a list that join_if_long may still extend: wait for all of it
            await helpers.pop()
        not_finished = _not_run(compiled, "the run did not finish")
        not_started = _not_run(compiled, "the batch's time budget ran out")
        return [
            (self._clock(), not_started) if at is None else (at, result or not_finished)
            for at, result in zip(taken_at, finished, strict=True)
        ]


def usage_record(
    principal: Principal,
    started_at: datetime,
    input_size: int,
    result: RunResult,
    *,
    batch_id: uuid.UUID | None = None,
    cached: bool = False,
) -> UsageRecord:
    """A run's usage record, under a new execution id."""
    return UsageRecord(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        api_key_id=principal.api_key_id,
        created_at=started_at,
        duration_ms=result.duration_seconds * 1000,
        status=result.outcome.value,
        exit_code=result.exit_code,
        error=result.error,
        module_size=result.module_size,
        module_sha256=result.module_sha256,
        input_size=input_size,
        output_size=len(result.stdout),
        stderr_size=len(result.stderr),
        memory_peak_bytes=result.memory_peak_bytes,
        fuel_consumed=result.fuel_consumed,
        batch_id=batch_id,
        cached=cached,
    )


async def _already_read(request: ExecutionRequest) -> ExecutionRequest:
    return request


def _not_run(compiled: CompiledModule, why: str) -> RunResult:
    """The result of a case that never started: a timeout of no time."""
    return RunResult(
        outcome=Outcome.TIMEOUT,
        exit_code=None,
        stdout=b"",
        stderr=b"",
        stdout_truncated=False,
        stderr_truncated=False,
        duration_seconds=0.0,
        fuel_consumed=0 if compiled.metered else None,  # metered: none of its budget spent
        memory_peak_bytes=0,
        error=f"not run: {why}",
        module_sha256=compiled.sha256,
        module_size=compiled.size,
    )
