"""`wasmwiz serve` as a real child process, for tests of signals, TLS and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.app import TEST_SALT, free_port

# Sleeps two seconds in poll_oneoff, then prints "done\n".
SLEEP_2S = """(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 400) "done\\n")
  (func (export "_start")
    (i64.store (i32.const 0) (i64.const 7))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 2000000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
    (i32.store (i32.const 300) (i32.const 400))
    (i32.store (i32.const 304) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 308)))))
"""


@contextmanager
def serve_process(
    tmp_path: Path,
    database_url: str,
    *,
    args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    scheme: str = "http",
    verify: Any = True,
    stdout: Path | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Start `wasmwiz serve` on a free port and wait until /health/live answers."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "API_SALT": TEST_SALT,
        "VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    output = stdout.open("wb") if stdout else None
    process = subprocess.Popen(
        [sys.executable, "-m", "wasmwiz.cli.main", "serve", "--port", str(port), *args],
        env=environment,
        cwd=tmp_path,
        stdout=output,
    )
    url = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health/live", verify=verify, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if output is not None:
            output.close()
