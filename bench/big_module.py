"""Section 4: a ~2 MB module, first run versus repeated, and again after a server restart.

The restart keeps VAR_DIR, so the second server finds the compiled artifacts in the disk
cache (COMPILED_CACHE_DIR, by default VAR_DIR/compiled) instead of compiling again.

One first run is one sample, and one sample on a shared machine can be off by half. So
several modules of the same size and code (bench.modules.big_module's variants) each
give one cold compile on the first server and one disk-cache load on the restarted one,
and the ratio is of the medians. Each body is built once, as wrk's are, so the client's
own multipart encoding is not timed.
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx

from bench import modules
from bench.support import (
    BenchAccount,
    BenchServer,
    Context,
    Section,
    ms,
    multipart,
    prepare_database,
)

_Body = tuple[str, bytes]


def _timed(client: httpx.Client, account: BenchAccount, body: _Body) -> float:
    content_type, content = body
    headers = {**account.headers, "Content-Type": content_type}
    started = time.perf_counter()
    response = client.post("/api/v1/execute", headers=headers, content=content)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json()["output"] != "big\n":
        raise RuntimeError(f"the big module failed: {response.status_code} {response.text[:300]}")
    return elapsed


def _spread(samples: list[float]) -> str:
    return f"{ms(statistics.median(samples))} (from {ms(min(samples))} to {ms(max(samples))})"


def run(context: Context) -> Section:
    section = Section("4. A ~2 MB module: first run, repeated, and after a restart")
    variants = context.count(5, 2)
    contents = [modules.big_module(variant=variant) for variant in range(variants)]
    bodies = [multipart([("wasm", "big.wasm", content)]) for content in contents]
    var_dir, database_url = context.fresh_database("big_module")
    account = prepare_database(database_url)
    repeats = context.count(20, 3)
    firsts: dict[str, list[float]] = {}
    repeated: dict[str, float] = {}
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
                firsts[phase] = [_timed(client, account, body) for body in bodies]
                repeated[phase] = statistics.median(
                    _timed(client, account, bodies[0]) for _ in range(repeats)
                )
        finally:
            server.stop()
    cold = statistics.median(firsts["first server"])
    after_restart = statistics.median(firsts["restarted"])
    section.row("module size", f"{len(contents[0]):,} bytes, {variants} variants")
    section.row("first run (validate + cold compile + run)", _spread(firsts["first server"]))
    section.row(f"repeated run (median of {repeats})", ms(repeated["first server"]))
    section.row("first run after a restart (disk cache)", _spread(firsts["restarted"]))
    section.row("repeated after the restart", ms(repeated["restarted"]))
    section.row("first / repeated (medians)", f"{cold / repeated['first server']:.0f}x")
    section.row("cold compile / first after restart (medians)", f"{cold / after_restart:.0f}x")
    section.target(
        "repeated run >= 50x faster than the first",
        cold / repeated["first server"] >= 50,
        f"{cold / repeated['first server']:.0f}x",
    )
    section.target(
        "after a restart still >= 50x faster than a cold compile",
        cold / after_restart >= 50,
        f"{cold / after_restart:.0f}x",
    )
    section.figures = {
        "module_bytes": len(contents[0]),
        "variants": variants,
        "first server: first": cold,
        "first server: repeated": repeated["first server"],
        "restarted: first": after_restart,
        "restarted: repeated": repeated["restarted"],
        "first server: firsts": firsts["first server"],
        "restarted: firsts": firsts["restarted"],
    }
    return section


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "big_module", *sys.argv[1:]]))
