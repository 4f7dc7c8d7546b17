"""Fuel is counted only for runs with a fuel budget, on an engine of their own.

A run without a budget runs on the unmetered engine (its `fuel_consumed` is None); a run
with one runs on the metered engine and stops exactly at it. Code compiled for one engine
never reaches the other: every cache keys modules by the engine, in memory and on disk,
and the compile workers compile for the engine each request names.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from wasmwiz.sandbox import CompiledModule, Limits, Outcome, RunRequest, Sandbox, load_example
from wasmwiz.sandbox.compile_pool import CompilePool
from wasmwiz.sandbox.compile_protocol import WorkerRules
from wasmwiz.sandbox.engine import (
    MAX_TABLE_ELEMENTS,
    EngineContext,
    config_fingerprint,
    engine_config,
    engine_options,
)
from wasmwiz.sandbox.models import CompileLimits, InspectionLimits

KEY = hashlib.sha256(b"the fuel metering tests' MAC key").digest()
UNBUDGETED = Limits(timeout_seconds=5)
BUDGETED = Limits(timeout_seconds=5, max_fuel=10_000)
ROOMY_BUDGET = Limits(timeout_seconds=5, max_fuel=10**9)


def unique_hello() -> bytes:
    """hello.wat with a comment of its own: a digest no other test has cached."""
    return load_example("hello") + f"\n;; {secrets.token_hex(8)}\n".encode()


def unique_loop() -> bytes:
    return load_example("loop") + f"\n;; {secrets.token_hex(8)}\n".encode()


def loads_into(engine: wasmtime.Engine, wasm_module: wasmtime.Module) -> bool:
    """Whether `wasm_module`'s compiled code is accepted by `engine` (its config matches)."""
    try:
        wasmtime.Module.deserialize(engine, wasm_module.serialize())
    except wasmtime.WasmtimeError:
        return False
    return True


def test_only_the_metered_engine_consumes_fuel() -> None:
    assert engine_options(metered=False)["consume_fuel"] is False
    assert engine_options(metered=True)["consume_fuel"] is True
    assert config_fingerprint(metered=False) != config_fingerprint(metered=True)


def test_an_unmetered_store_has_no_fuel_and_a_metered_one_its_budget() -> None:
    context = EngineContext()
    try:
        ticks = context.epoch_deadline_ticks(1.0)
        plain = context.unmetered.new_store(RunRequest(), UNBUDGETED, ticks)
        with pytest.raises(wasmtime.WasmtimeError):
            plain.get_fuel()  # fuel is not configured on this engine
        metered = context.metered.new_store(RunRequest(), BUDGETED, ticks)
        assert metered.get_fuel() == 10_000
    finally:
        context.close()


def test_a_run_without_a_budget_is_not_metered(sandbox: Sandbox) -> None:
    compiled = sandbox.prepare(unique_hello())
    result = sandbox.run(compiled, RunRequest())

    assert result.outcome is Outcome.SUCCESS
    assert result.fuel_consumed is None
    assert not result.fuel_consumed_is_lower_bound
    assert not compiled.metered
    # Its code was compiled for an engine without fuel: the metered one refuses it.
    assert loads_into(wasmtime.Engine(engine_config(metered=False)), compiled.wasm_module)
    assert not loads_into(wasmtime.Engine(engine_config(metered=True)), compiled.wasm_module)


def test_an_unmetered_run_is_stopped_by_the_deadline_alone(sandbox: Sandbox) -> None:
    limits = Limits(timeout_seconds=0.3)
    result = sandbox.run(sandbox.prepare(unique_loop(), limits), RunRequest(), limits)

    assert result.outcome is Outcome.TIMEOUT
    assert result.fuel_consumed is None
    assert not result.fuel_consumed_is_lower_bound  # nothing counted: no bound of anything


def test_a_metered_timeout_reports_a_lower_bound(sandbox: Sandbox) -> None:
    limits = Limits(timeout_seconds=0.3, max_fuel=2**63)
    result = sandbox.run(sandbox.prepare(unique_loop(), limits), RunRequest(), limits)

    assert result.outcome is Outcome.TIMEOUT
    assert result.fuel_consumed is not None
    assert result.fuel_consumed_is_lower_bound


def test_a_run_with_a_budget_stops_exactly_at_it(sandbox: Sandbox) -> None:
    compiled = sandbox.prepare(unique_loop(), BUDGETED)
    result = sandbox.run(compiled, RunRequest(), BUDGETED)

    assert compiled.metered
    assert result.outcome is Outcome.FUEL_EXHAUSTED
    assert result.fuel_consumed == 10_000
    assert loads_into(wasmtime.Engine(engine_config(metered=True)), compiled.wasm_module)
    assert not loads_into(wasmtime.Engine(engine_config(metered=False)), compiled.wasm_module)


def test_a_module_runs_only_under_limits_of_its_engine(sandbox: Sandbox) -> None:
    data = unique_hello()
    plain, metered = sandbox.prepare(data), sandbox.prepare(data, BUDGETED)

    with pytest.raises(ValueError, match="without a fuel budget"):
        sandbox.run(plain, RunRequest(), BUDGETED)
    with pytest.raises(ValueError, match="with a fuel budget"):
        sandbox.run(metered, RunRequest(), UNBUDGETED)


def outcomes(
    sandbox: Sandbox, prepare: Callable[[Limits], CompiledModule]
) -> list[str | bool | None]:
    """Run the same module without, with, then without a budget, each prepared anew: for
    each, whether fuel was counted and which engine the module was compiled for."""
    seen: list[str | bool | None] = []
    for limits in (UNBUDGETED, ROOMY_BUDGET, UNBUDGETED):
        compiled = prepare(limits)
        result = sandbox.run(compiled, RunRequest(), limits)
        assert result.outcome is Outcome.SUCCESS
        assert result.stdout == b"Hello, WasmWiz!\n"
        seen.append(None if result.fuel_consumed is None else "metered")
        seen.append(compiled.metered)
    return seen


EXPECTED = [None, False, "metered", True, None, False]


def test_the_memory_cache_keeps_each_engines_module_apart() -> None:
    data = unique_hello()
    with Sandbox(max_concurrency=1) as sandbox:
        assert outcomes(sandbox, lambda limits: sandbox.prepare(data, limits)) == EXPECTED
        stats = sandbox.stats()
        # One compile per engine; the third run found the unmetered module cached.
        assert (stats.compiles, stats.cache_entries, stats.cache_hits) == (2, 2, 1)
        assert sandbox.prepare(data) is not sandbox.prepare(data, ROOMY_BUDGET)


def test_the_disk_cache_keeps_each_engines_artifact_apart(tmp_path: Path) -> None:
    data = unique_hello()
    cache = tmp_path / "cache"
    with Sandbox(cache_dir=cache, cache_mac_key=KEY, max_concurrency=1) as first:
        assert outcomes(first, lambda limits: first.prepare(data, limits)) == EXPECTED
        assert first.stats().compiles == 2
    # One artifact per engine, each under its engine's fingerprint.
    directories = {path.parent for path in cache.glob("*/*.cwasm")}
    assert len(directories) == 2

    with Sandbox(cache_dir=cache, cache_mac_key=KEY, max_concurrency=1) as restarted:
        assert outcomes(restarted, lambda limits: restarted.prepare(data, limits)) == EXPECTED
        stats = restarted.stats()
        assert (stats.compiles, stats.disk_cache_hits) == (0, 2)


def test_stored_modules_keep_each_engines_module_apart(tmp_path: Path) -> None:
    data = unique_hello()
    sha256 = hashlib.sha256(data).hexdigest()
    reads: list[int] = []

    def load() -> bytes:
        reads.append(1)
        return data

    cache = tmp_path / "cache"
    with Sandbox(cache_dir=cache, cache_mac_key=KEY, max_concurrency=1) as first:
        prepared = outcomes(first, lambda limits: first.prepare_stored(sha256, load, limits))
        assert prepared == EXPECTED
        assert len(reads) == 2  # read once for each engine's compile
    with Sandbox(cache_dir=cache, cache_mac_key=KEY, max_concurrency=1) as restarted:
        prepared = outcomes(
            restarted, lambda limits: restarted.prepare_stored(sha256, load, limits)
        )
        assert prepared == EXPECTED
        assert len(reads) == 2  # both from disk: not read again
        assert restarted.stats().disk_cache_hits == 2


@pytest.mark.parametrize("metered", [False, True])
def test_a_compile_worker_compiles_for_the_engine_the_request_names(metered: bool) -> None:
    rules = WorkerRules(
        address_space_bytes=CompileLimits().memory_bytes,
        max_module_bytes=10 << 20,
        max_memory_bytes=128 << 20,
        max_table_elements=MAX_TABLE_ELEMENTS,
        inspection=InspectionLimits(),
    )
    pool = CompilePool(CompileLimits(workers=1), rules)
    try:
        # The same worker, one request for each engine in turn.
        first = pool.compile(load_example("hello"), metered=metered)
        second = pool.compile(load_example("hello"), metered=not metered)
    finally:
        pool.close()
    for output, flag in ((first, metered), (second, not metered)):
        own = wasmtime.Engine(engine_config(metered=flag))
        other = wasmtime.Engine(engine_config(metered=not flag))
        wasmtime.Module.deserialize(own, output.artifact)
        with pytest.raises(wasmtime.WasmtimeError):
            wasmtime.Module.deserialize(other, output.artifact)
