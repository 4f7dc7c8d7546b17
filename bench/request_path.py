"""Section 0: where one request's time goes, stage by stage, in process (no socket).

Each stage of POST /api/v1/execute is timed alone on the real objects the app builds
(create_app's own services, a SQLite database): the multipart read, authentication from
the database and from the key cache, the rate-limit gate, the sandbox with its worker
thread hop, the response's JSON; then the whole app called as ASGI, without a socket.
The HTTP section's latency at concurrency 1 minus the last figure is what uvicorn, the
socket and the client add. Then the same for SHA-256 of 1 MiB of stdin: the form, the
sandbox beside its guest, and the whole app minus the guest's own time.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import Request, Response

from bench import modules
from bench.support import (
    SALT,
    BenchAccount,
    Context,
    Section,
    median,
    ms,
    multipart,
    prepare_database,
)
from wasmwiz.api.dependencies import Runner, authenticate
from wasmwiz.api.executions import EncodingQuery
from wasmwiz.api.schemas import ExecutionResponse, OutputEncoding
from wasmwiz.app import create_app
from wasmwiz.config import load_settings
from wasmwiz.http_common.app_state import AppState
from wasmwiz.http_common.execution_form import read_execution_form
from wasmwiz.sandbox import RunRequest
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.principals import Scope

# How uvicorn hands a large body to the app: in pieces of up to a socket read's 256 KiB.
UVICORN_PIECE = 256 * 1024


def run(context: Context) -> Section:
    var_dir, database_url = context.fresh_database("request_path")
    account = prepare_database(database_url)
    return asyncio.run(_run(context, var_dir, database_url, account))


async def _run(
    context: Context, var_dir: Path, database_url: str, account: BenchAccount
) -> Section:
    section = Section("0. One request, stage by stage, in process (medians)")
    settings = load_settings(
        var_dir=var_dir, database_url=database_url, api_salt=SALT, log_level="WARNING"
    )
    app = create_app(settings)
    content_type, body = multipart([("wasm", "hello.wasm", modules.hello())])
    headers = [
        (b"authorization", f"Bearer {account.api_key}".encode()),
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    repeats = context.count(2000, 200)
    figures: dict[str, float] = {}

    async def timed(name: str, stage: Callable[[], Awaitable[object]]) -> None:
        for _ in range(20):
            await stage()
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            await stage()
            samples.append(time.perf_counter() - started)
        figures[name] = median(samples)

    async with app.router.lifespan_context(app):
        state: AppState = app.state.wasmwiz
        database, api_keys = state.database, state.api_keys
        admission_gate, sandbox = state.executions.gate, state.executions.sandbox
        wasm = modules.hello()
        principal = await api_keys.authenticate(database, f"Bearer {account.api_key}")
        uncached = ApiKeyService(SALT)

        async def read_form() -> object:
            return await read_execution_form(
                _request(headers, body), max_wasm_size=10 << 20, max_input_size=1 << 20
            )

        async def authenticate_db() -> object:
            return await uncached.authenticate(database, f"Bearer {account.api_key}")

        async def authenticate_cached() -> object:
            return await api_keys.authenticate(database, f"Bearer {account.api_key}")

        async def gate() -> object:
            async with admission_gate.admit(principal) as admission:
                return admission

        async def sandbox_inline() -> object:
            return sandbox.run(sandbox.prepare(wasm), RunRequest())

        async def sandbox_worker() -> object:
            return await sandbox.execute(wasm, RunRequest())

        result = await sandbox.execute(wasm, RunRequest())

        async def response_json() -> object:
            response = ExecutionResponse.from_result(principal.user_id, result, OutputEncoding.UTF8)
            return response.model_dump_json()

        async def whole_app() -> object:
            return await _call(app, headers, body)

        await timed("multipart read", read_form)
        await timed("authenticate: database query", authenticate_db)
        await timed("authenticate: key cache hit", authenticate_cached)
        await timed("rate-limit gate (memory)", gate)
        await timed("sandbox run on this thread", sandbox_inline)
        await timed("sandbox run via its worker thread", sandbox_worker)
        await timed("response model + JSON", response_json)
        await timed("whole app as ASGI (no socket)", whole_app)
        figures.update(await _typed_against_bare(app, headers, repeats))
        figures.update(await _one_mebibyte(app, account, context.count(200, 20)))

    for name, seconds in figures.items():
        section.row(name, ms(seconds))
    hop = figures["sandbox run via its worker thread"] - figures["sandbox run on this thread"]
    section.row("worker thread hop (difference)", ms(hop))
    typed = figures["route, typed parameters"] - figures["route, bare Request"]
    section.row("typed parameters' cost (difference)", ms(typed))
    section.figures = figures
    return section


async def _typed_against_bare(
    app: Any, headers: list[tuple[bytes, bytes]], repeats: int
) -> dict[str, float]:
    """What FastAPI's solving of the execute route's typed parameters (the principal with
    its scope, the `encoding` query) costs against reading them from a bare Request, as
    the route did before: two routes that differ only so, answering at once, timed in
    turn so the machine's noise falls on both alike."""

    async def typed(principal: Runner, encoding: EncodingQuery = OutputEncoding.UTF8) -> Response:
        return Response(b"")

    async def bare(request: Request) -> Response:
        principal = await authenticate(request, None)
        principal.require(Scope.EXECUTE)
        OutputEncoding(request.query_params.get("encoding", OutputEncoding.UTF8))
        return Response(b"")

    app.router.add_api_route("/bench/typed", typed, methods=["POST"])
    app.router.add_api_route("/bench/bare", bare, methods=["POST"])
    paths = {"route, typed parameters": "/bench/typed", "route, bare Request": "/bench/bare"}
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for turn in range(repeats + 20):
        for name, path in paths.items():
            started = time.perf_counter()
            await _call(app, headers, b"", path=path, query=b"encoding=base64")
            if turn >= 20:
                samples[name].append(time.perf_counter() - started)
    return {name: median(values) for name, values in samples.items()}


async def _one_mebibyte(app: Any, account: BenchAccount, repeats: int) -> dict[str, float]:
    """SHA-256 of 1 MiB of stdin, the module uploaded with it, stage by stage: reading the
    form (the body in the 256 KiB pieces uvicorn hands over), the sandbox's run on this
    thread beside the guest's own time, and the whole app; each request's time minus its
    guest's is what the request path adds for 1 MiB (issue 20's target: 1 ms, over HTTP)."""
    state: AppState = app.state.wasmwiz
    sandbox = state.executions.sandbox
    wasm = modules.sha256()
    stdin = random.Random(7).randbytes(1 << 20)
    content_type, body = multipart([("wasm", "sha256.wasm", wasm), ("input", "input", stdin)])
    headers = [
        (b"authorization", f"Bearer {account.api_key}".encode()),
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    pieces = [body[start : start + UVICORN_PIECE] for start in range(0, len(body), UVICORN_PIECE)]
    compiled = sandbox.prepare(wasm)
    samples: dict[str, list[float]] = {
        name: []
        for name in (
            "1 MiB: multipart read",
            "1 MiB: sandbox run on this thread",
            "1 MiB: sandbox run minus the guest",
            "1 MiB: whole app as ASGI",
            "1 MiB: whole app minus the guest",
        )
    }
    for turn in range(repeats + 10):  # the first ten warm up; not counted
        started = time.perf_counter()
        await read_execution_form(
            Request(_scope(headers), _receiver(*pieces)),
            max_wasm_size=10 << 20,
            max_input_size=1 << 20,
        )
        form = time.perf_counter() - started
        started = time.perf_counter()
        result = sandbox.run(compiled, RunRequest(stdin=stdin))
        run = time.perf_counter() - started
        started = time.perf_counter()
        answer = await _call(app, headers, pieces)
        whole = time.perf_counter() - started
        if turn >= 10:
            samples["1 MiB: multipart read"].append(form)
            samples["1 MiB: sandbox run on this thread"].append(run)
            samples["1 MiB: sandbox run minus the guest"].append(run - result.duration_seconds)
            samples["1 MiB: whole app as ASGI"].append(whole)
            guest = json.loads(answer)["duration_ms"] / 1000
            samples["1 MiB: whole app minus the guest"].append(whole - guest)
    return {name: median(values) for name, values in samples.items()}


def _request(headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    return Request(_scope(headers), _receiver(body))


def _scope(
    headers: list[tuple[bytes, bytes]], path: str = "/api/v1/execute", query: bytes = b""
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


def _receiver(*pieces: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    """The ASGI receive of a body in these pieces."""
    remaining = iter(pieces)

    async def receive() -> dict[str, Any]:
        piece = next(remaining, None)
        if piece is None:
            await asyncio.sleep(3600)  # the client would disconnect; never reached here
        return {"type": "http.request", "body": piece, "more_body": piece is not pieces[-1]}

    return receive


async def _call(
    app: Any,
    headers: list[tuple[bytes, bytes]],
    body: bytes | list[bytes],
    path: str = "/api/v1/execute",
    query: bytes = b"",
) -> bytes:
    """The app's answer to one request (a body, or the pieces it arrives in); 200 only."""
    status, answer = 0, bytearray()

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer.extend(message.get("body", b""))

    pieces = body if isinstance(body, list) else [body]
    await app(_scope(headers, path, query), _receiver(*pieces), send)
    if status != 200:
        raise RuntimeError(f"the app answered {status}: {bytes(answer)[:300]!r}")
    return bytes(answer)


if __name__ == "__main__":
    from bench.run import main

    sys.exit(main(["--sections", "request_path", *sys.argv[1:]]))
