"""Section 4: a ~2 MB module, first run versus repeated, and again after a server restart.

The restart keeps VAR_DIR, so the second server finds the compiled artifact in the disk
cache (COMPILED_CACHE_DIR, by default VAR_DIR/compiled) instead of compiling again.
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx

from bench import modules
from bench.support import BenchAccount, BenchServer, Context, Section, ms, prepare_database


def _timed(client: httpx.Client, account: BenchAccount, content: bytes) -> float:
    started = time.perf_counter()
    response = client.post(
        "/api/v1/execute", headers=account.headers, files={"wasm": ("big.wasm", content)}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json()["output"] != "big\n":
        raise RuntimeError(f"the big module failed: {response.status_code} {response.text[:300]}")
    return elapsed


def run(context: Context) -> Section:
    section = Section("4. A ~2 MB module: first run, repeated, and after a restart")
    content = modules.big_module()
    var_dir, database_url = context.fresh_database("big_module")
    account = prepare_database(database_url)
    repeats = context.count(20, 3)
    figures: dict[str, float] = {}
    for phase in ("first server", "restarted"):
        server = BenchServer(var_dir, database_url).start()
        try:
            with httpx.Client(base_url=server.url, timeout=120) as client:
                # A new process's first request pays for things no cache is about (the
                # first query, the first key lookup); a small module pays for them here.
                warm_up = client.post(
                    "/api/v1/execute",
                    headers=account.headers,
                    files={"wasm": ("hello.wasm", modules.hello())},
                )
                warm_up.raise_for_status()
                figures[f"{phase}: first"] = _timed(client, account, content)
                figures[f"{phase}: repeated"] = statistics.median(
                    _timed(client, account, content) for _ in range(repeats)
                )
        finally:
            server.stop()
    cold = figures["first server: first"]
    repeated = figures["first server: repeated"]
    after_restart = figures["restarted: first"]
    section.row("module size", f"{len(content):,} bytes")
    section.row("first run (validate + cold compile + run)", ms(cold))
    section.row(f"repeated run (median of {repeats})", ms(repeated))
    section.row("first run after a restart (disk cache)", ms(after_restart))
    section.row("repeated after the restart", ms(figures["restarted: repeated"]))
    section.row("first / repeated", f"{cold / repeated:.0f}x")
    section.row("cold compile / first after restart", f"{cold / after_restart:.0f}x")
    section.target(
        "repeated run >= 50x faster than the first",
        cold / repeated >= 50,
        f"{cold / repeated:.0f}x",
    )
    section.target(
        "after a restart still >= 50x faster than a cold compile",
        cold / after_restart >= 50,
        f"{cold / after_restart:.0f}x",
    )
    section.figures = {"module_bytes": len(content), **figures}
    return section


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "big_module", *sys.argv[1:]]))
