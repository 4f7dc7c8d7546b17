"""/metrics: values move as executions of each outcome happen; the token and the port."""

from __future__ import annotations

import httpx

from tests.api import wat
from tests.fixtures.app import Account, ServerFactory, free_port
from tests.ops.metrics_text import sample

OUTCOMES = {
    "success": wat.HELLO,
    "exit_nonzero": wat.EXIT_3,
    "trap": wat.UNREACHABLE,
    "timeout": wat.INFINITE_LOOP,
    "memory_limit": wat.MEMORY_BOMB,
    "stack_overflow": wat.RECURSION,
    "output_limit": wat.FLOOD,
}


def test_metrics_move_with_each_outcome_and_refusal(
    server_factory: ServerFactory, ops_account: Account
) -> None:
    server = server_factory(max_output_size=64 * 1024)
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def execute(source: str) -> httpx.Response:
            return client.post(
                "/api/v1/execute",
                headers=ops_account.headers,
                files={"wasm": ("m.wat", source.encode())},
            )

        before = client.get("/metrics").text
        for outcome, source in OUTCOMES.items():
            response = execute(source)
            assert response.json()["status"] == outcome
            after = client.get("/metrics").text
            moved = sample(after, "wasmwiz_executions_total", outcome=outcome, tier="pro")
            assert (
                moved == sample(before, "wasmwiz_executions_total", outcome=outcome, tier="pro") + 1
            )
            before = after

        runs = len(OUTCOMES)
        assert sample(before, "wasmwiz_execution_duration_seconds_count") == runs
        assert sample(before, "wasmwiz_execution_fuel_count") == 0  # none had a fuel budget
        assert sample(before, "wasmwiz_compile_cache_misses_total") == runs
        execute(wat.HELLO)
        again = client.get("/metrics").text
        assert sample(again, "wasmwiz_compile_cache_hits_total") == 1

        rejected = execute("(module (func")
        assert rejected.json()["code"] == "invalid_wat"
        client.post("/api/v1/execute", files={"wasm": ("m.wat", b"")})  # no key
        text = client.get("/metrics").text
        assert sample(text, "wasmwiz_requests_refused_total", code="invalid_wat") == 1
        route = {"route": "/api/v1/execute", "method": "POST"}
        assert sample(text, "wasmwiz_http_requests_total", **route, status="200") == runs + 1
        assert sample(text, "wasmwiz_http_requests_total", **route, status="401") == 1
        assert sample(text, "wasmwiz_http_request_duration_seconds_count", **route) == runs + 3
        assert sample(text, "wasmwiz_executions_in_flight") == 0
        assert sample(text, "wasmwiz_executions_capacity") == 4  # MAX_CONCURRENT_EXECUTIONS
        # Counted from 0 at start (not absent), so a first event is an increase alerts see.
        assert 'wasmwiz_compile_worker_crashes_total{signal="SIGSEGV"} 0.0' in text
        assert 'wasmwiz_jobs_total{event="finished"} 0.0' in text
        assert "wasmwiz_rate_limiter_errors_total 0.0" in text
        assert "wasmwiz_task_queue_depth{queue=" in text
        assert sample(text, "wasmwiz_ready") == 1
        assert sample(text, "wasmwiz_usage_write_lag_seconds") >= 0
        assert "wasmwiz_db_pool_checked_out" in text


def test_metrics_token_is_required_when_set(server_factory: ServerFactory) -> None:
    server = server_factory(metrics_token="s3cret-scrape-token")
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    wrong = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unauthorized"
    right = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"}
    )
    assert right.status_code == 200
    assert "wasmwiz_http_requests_total" in right.text


def test_metrics_port_serves_metrics_alone(server_factory: ServerFactory) -> None:
    port = free_port()
    server = server_factory(metrics_port=port)
    assert httpx.get(f"{server.url}/metrics").status_code == 404
    separate = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert separate.status_code == 200
    assert sample(separate.text, "wasmwiz_ready") == 1
