"""WorkerPool on its own: round-robin across fairness keys, and closing while others submit."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import pytest

from wasmwiz.sandbox.models import SandboxBusy, SandboxError
from wasmwiz.sandbox.workers import WorkerPool, current_key


def _order_of(pool: WorkerPool, keys: list[str]) -> list[str]:
    """Hold the only worker, queue one job per key in `keys`, release: the order they ran."""
    gate = threading.Event()
    ran: list[str] = []
    blocker = pool.submit(gate.wait)

    def job(label: str) -> Callable[[], None]:
        return lambda: ran.append(f"{label}:{current_key()}")

    futures = [pool.submit(job(key), key=key) for key in keys]
    gate.set()
    blocker.result(timeout=10)
    for future in futures:
        future.result(timeout=10)
    return [entry.split(":")[0] for entry in ran]


def test_waiting_jobs_are_served_round_robin_across_keys() -> None:
    pool = WorkerPool(max_workers=1, max_queue=32)
    try:
        order = _order_of(pool, ["a"] * 10 + ["b", "b"] + ["c"])
    finally:
        pool.close()
    # b and c arrived behind a's burst of ten, yet each waits for one of a's jobs at most.
    assert order == ["a", "b", "c", "a", "b"] + ["a"] * 8


def test_the_fifo_pool_serves_in_arrival_order() -> None:
    pool = WorkerPool(max_workers=1, max_queue=32, fair=False)
    try:
        order = _order_of(pool, ["a"] * 10 + ["b", "b"] + ["c"])
    finally:
        pool.close()
    assert order == ["a"] * 10 + ["b", "b", "c"]


def test_the_queue_bound_is_shared_by_every_key() -> None:
    pool = WorkerPool(max_workers=1, max_queue=2)
    gate = threading.Event()
    try:
        futures = [pool.submit(gate.wait, key="a"), pool.submit(gate.wait, key="b")]
        futures.append(pool.submit(gate.wait, key="c"))
        with pytest.raises(SandboxBusy):
            pool.submit(gate.wait, key="d")
        gate.set()
        assert [f.result(timeout=10) for f in futures] == [True, True, True]
    finally:
        gate.set()
        pool.close()


def test_a_job_sees_its_key_and_nothing_leaks_to_the_next() -> None:
    pool = WorkerPool(max_workers=1, max_queue=4)
    try:
        assert pool.submit(current_key, key="acct-1").result(timeout=10) == "acct-1"
        assert pool.submit(current_key).result(timeout=10) == ""
    finally:
        pool.close()
    assert current_key() == ""


ROUNDS_SECONDS = 10


# Serial: with a 1 us switch interval every forced switch waits for the scheduler, so
# beside other test processes on two cores one round took minutes (CI timed out at
# 120 s within a single round); alone, 150 rounds take well under a second.
@pytest.mark.serial
def test_submits_from_other_threads_while_closing_all_settle() -> None:
    # Before the fix a submit that passed the closed check could queue its job behind
    # close()'s stop bytes, and its future never settled. Threads switch as often as the
    # interpreter allows, over many short rounds, to open that window if it exists.
    # A round takes about 2 ms on a quiet machine; on a loaded one every forced switch
    # waits for the scheduler, so the rounds stop after ROUNDS_SECONDS, not at a count.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    rounds: list[tuple[int, int]] = []
    deadline = time.monotonic() + ROUNDS_SECONDS
    try:
        while len(rounds) < 150 and (len(rounds) < 5 or time.monotonic() < deadline):
            rounds.append(_close_while_submitting())
    finally:
        sys.setswitchinterval(previous)
    assert sum(unsettled for _, unsettled in rounds) == 0
    assert sum(accepted for accepted, _ in rounds) > 0


def _close_while_submitting() -> tuple[int, int]:
    """Four threads submit while the pool closes: (jobs accepted, futures never settled)."""
    pool = WorkerPool(max_workers=2, max_queue=200)
    futures: list[Future[int]] = []
    start = threading.Barrier(5)

    def submitter() -> None:
        start.wait()
        for i in range(200):
            try:
                futures.append(pool.submit(lambda i=i: i, key=f"k{i % 3}"))
            except SandboxBusy:
                continue
            except SandboxError:
                return  # closed: every later submit is refused too

    threads = [threading.Thread(target=submitter) for _ in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    while len(futures) < 20:
        time.sleep(0)  # close while the submitters are in full flow
    pool.close()
    for thread in threads:
        thread.join()
    with pytest.raises(SandboxError):
        pool.submit(lambda: 0)
    return len(futures), sum(not f.done() for f in futures)
