"""Run the benchmarks and print one table, the ratios, and whether each target holds.

    .venv/bin/python -m bench.run                 # every section, full length (~9 min)
    .venv/bin/python -m bench.run --quick         # every section, a few seconds each
    .venv/bin/python -m bench.run --sections engine,http
    .venv/bin/python -m bench.run --database-url postgresql://…  # servers on PostgreSQL
    .venv/bin/python -m bench.run --redis-url redis://127.0.0.1:6379/0  # + --workers N

Needs `wrk` (Debian package) for the load and `node` for section 5. docs/performance.md
explains the method and keeps the latest figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

from bench import (
    big_module,
    cli_peer,
    cpu,
    engine,
    files,
    http,
    jobs,
    request_path,
    soak,
    stored_modules,
)
from bench.support import Context, Section, workspace, wrk_available

SECTIONS: dict[str, Callable[[Context], Section]] = {
    "request_path": request_path.run,
    "engine": engine.run,
    "http": http.run,
    "big_module": big_module.run,
    "cpu": cpu.run,
    "cli_peer": cli_peer.run,
    "stored_modules": stored_modules.run,
    "files": files.run,
    "jobs": jobs.run,
    "soak": soak.run,
}


def machine() -> str:
    cpu_model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu_model}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"wasmtime {version('wasmtime')}; load average {load:.2f} at start"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds per section")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    parser.add_argument("--soak-seconds", type=float, default=None, help="default 60 (quick 3)")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--redis-url", default=None, help="also measure --workers N (one per core) on Redis"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args(argv)
    names = [name.strip() for name in options.sections.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    if "http" in names and "engine" not in names:
        names.insert(0, "engine")  # the ratios need the floor from the same run
    if {"http", "soak"} & set(names) and not wrk_available():
        print("wrk is needed for the load (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    print(f"# WasmWiz benchmarks{' (quick)' if options.quick else ''}")
    print(f"machine: {machine()}")
    started = time.monotonic()
    with workspace(keep=options.keep) as directory:
        soak_seconds = options.soak_seconds or (3.0 if options.quick else 60.0)
        context = Context(
            options.quick, directory, options.database_url, soak_seconds, options.redis_url
        )
        for name in names:
            context.sections[name] = SECTIONS[name](context)
            context.sections[name].print()
            if name == "http":
                context.sections["ratios"].print()
        if options.keep:
            print(f"\nwork directory kept: {directory}")
    targets = [t for section in context.sections.values() for t in section.targets]
    print(f"\n## Targets ({sum(t.holds for t in targets)} of {len(targets)} hold)")
    for target in targets:
        print(f"  [{'HOLDS' if target.holds else 'MISSED'}] {target.name}")
    print(f"\n{time.monotonic() - started:.0f} s in all")
    if options.json is not None:
        options.json.write_text(
            json.dumps(
                {
                    "quick": options.quick,
                    "machine": machine(),
                    "sections": {
                        name: {
                            "figures": section.figures,
                            "targets": [
                                {"name": t.name, "holds": t.holds, "detail": t.detail}
                                for t in section.targets
                            ],
                        }
                        for name, section in context.sections.items()
                    },
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
