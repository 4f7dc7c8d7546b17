"""The ways wasmtime-py can abort the whole process are impossible by construction."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from wasmwiz.sandbox.engine import ENGINE_OPTIONS, EngineContext

# wasmtime aborts the process at Engine() when max_wasm_stack is above this.
WASMTIME_STACK_ABORT = 2 * 1024 * 1024


def test_the_wasm_stack_stays_below_the_abort_threshold() -> None:
    assert int(ENGINE_OPTIONS["max_wasm_stack"]) <= WASMTIME_STACK_ABORT
    EngineContext().close()


def test_a_run_from_a_small_stack_thread_cannot_crash_the_process() -> None:
    # In a child process: were the guard missing, the crash would be a SIGSEGV of the
    # child and a failed assertion here, not a dead test run.
    script = textwrap.dedent(
        """
        import threading
        from wasmwiz.sandbox import Limits, RunRequest, Sandbox
        recursion = b'(module (func $f (call $f)) (func (export "_start") (call $f)))'
        outcomes = []
        with Sandbox(max_concurrency=1) as sandbox:
            compiled = sandbox.prepare(recursion)
            threading.stack_size(256 * 1024)
            thread = threading.Thread(
                target=lambda: outcomes.append(sandbox.run(compiled, RunRequest()).outcome)
            )
            thread.start()
            thread.join()
        print(outcomes[0].value)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "stack_overflow"
