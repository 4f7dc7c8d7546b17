"""The runtimes run on both engines: without a fuel budget (not metered) and with one."""

from __future__ import annotations

import pytest

from tests.runtimes.conftest import RUNTIMES, manifest
from wasmwiz.sandbox import CompiledModule, Limits, Outcome, RunRequest, Sandbox

PROGRAMS = {"lua": "print(6 * 7)\n", "quickjs": "console.log(6 * 7);\n"}
ROOMY = Limits(timeout_seconds=10, max_fuel=10**12)
TIGHT = Limits(timeout_seconds=10, max_fuel=50_000)


@pytest.mark.parametrize("runtime", sorted(PROGRAMS))
def test_a_runtime_runs_with_and_without_a_fuel_budget(
    runtime: str, runtime_sandbox: Sandbox, prepared: dict[str, CompiledModule]
) -> None:
    [entry] = [item for item in manifest()["runtimes"] if item["name"] == runtime]
    data = RUNTIMES.joinpath(entry["file"]).read_bytes()
    request = RunRequest(stdin=PROGRAMS[runtime].encode())
    metered = runtime_sandbox.prepare(data, ROOMY)

    plain = runtime_sandbox.run(prepared[runtime], request)
    counted = runtime_sandbox.run(metered, request, ROOMY)
    stopped = runtime_sandbox.run(metered, request, TIGHT)
    again = runtime_sandbox.run(prepared[runtime], request)

    assert (plain.stdout, counted.stdout, again.stdout) == (b"42\n",) * 3
    assert (plain.fuel_consumed, again.fuel_consumed) == (None, None)
    assert TIGHT.max_fuel is not None
    assert counted.fuel_consumed is not None
    assert counted.fuel_consumed > TIGHT.max_fuel
    assert stopped.outcome is Outcome.FUEL_EXHAUSTED
    assert stopped.fuel_consumed == TIGHT.max_fuel
