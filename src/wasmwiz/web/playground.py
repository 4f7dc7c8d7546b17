"""The playground: run a module from the browser, through the same service as the API."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response

from wasmwiz.errors import NotFound
from wasmwiz.http_common.dependencies import ExecutionFormDep, ExecutionsDep
from wasmwiz.sandbox import RunResult, load_example
from wasmwiz.web.rendering import WebRoute, render
from wasmwiz.web.viewer import ViewerDep

router = APIRouter(route_class=WebRoute, include_in_schema=False)

EXAMPLES = [
    ("hello", "Hello, world", "Prints one line.", ""),
    ("echo", "Echo", "Copies stdin to stdout.", "Anything you type as input comes back.\n"),
    ("loop", "Infinite loop", "Spins forever: see the time limit stop it.", ""),
]


# Programs for the public runtimes (docs/runtimes.md): `module=` on the same route.
RUNTIME_EXAMPLES = [
    (
        "quickjs",
        "Run JavaScript",
        "QuickJS-ng: the program is the input.",
        "const squares = [1, 2, 3].map(n => n * n);\nconsole.log('squares:', squares);\n",
    ),
    (
        "lua",
        "Run Lua",
        "Lua 5.4: the program is the input.",
        'local words = {"wasm", "lua", "sandbox"}\ntable.sort(words)\n'
        'print(table.concat(words, ", "))\n',
    ),
]


@router.get("/")
async def playground(
    request: Request, viewer: ViewerDep, form: ExecutionFormDep, executions: ExecutionsDep
) -> Response:
    viewer.require_user()
    limits = executions.limits
    context = {
        "examples": EXAMPLES,
        "runtime_examples": RUNTIME_EXAMPLES,
        "limits": {
            "max_wasm_size": form.max_wasm_size,
            "max_input_size": form.max_input_size,
            "max_files_size": form.files.max_bytes,
            "max_files": form.files.max_entries,
            "max_output_size": limits.max_output_bytes,
            "timeout": limits.timeout_seconds,
            "memory": limits.memory_bytes,
        },
    }
    return render(request, viewer, "playground.html", context)


@router.get("/examples/{name}.wat")
async def example_source(name: str) -> PlainTextResponse:
    try:
        source = load_example(name)
    except KeyError:
        raise NotFound(f"There is no example named {name!r}.") from None
    return PlainTextResponse(source.decode("utf-8"))


@router.post("/upload")
async def upload(
    request: Request, viewer: ViewerDep, form: ExecutionFormDep, executions: ExecutionsDep
) -> JSONResponse:
    """Run a module for the signed-in user; counts against their tier like an API call."""
    principal = viewer.principal()
    form.refuse_declared_oversize(request)
    # As the API's execute: admitted (rate, quota, a slot) before the body is read.
    report = await executions.admit_then_execute(principal, lambda: form.read(request))
    body = {
        "execution_id": str(report.execution_id),
        **run_summary(report.result),
        "cached": report.cached,
    }
    return JSONResponse(body, headers=report.admission.headers)


def run_summary(result: RunResult) -> dict[str, object]:
    """The run as the page shows it; binary output also comes as base64 for a download, and
    the collected files' contents always do (the page offers each as a download)."""
    return {
        "status": result.outcome.value,
        "error": result.error,
        "exit_code": result.exit_code,
        "duration_ms": round(result.duration_seconds * 1000, 3),
        "fuel_consumed": result.fuel_consumed,  # None: not metered (no fuel budget)
        "fuel_consumed_is_lower_bound": result.fuel_consumed_is_lower_bound,
        "memory_peak_bytes": result.memory_peak_bytes,
        "module_sha256": result.module_sha256,
        "stdout": _stream(result.stdout, result.stdout_truncated),
        "stderr": _stream(result.stderr, result.stderr_truncated),
        "files": [
            {
                "path": file.path,
                "size": file.size,
                "sha256": file.sha256,
                "content": None
                if file.content is None
                else base64.b64encode(file.content).decode("ascii"),
            }
            for file in result.files
        ],
        "files_truncated": result.files_truncated,
    }


def _stream(data: bytes, truncated: bool) -> dict[str, object]:
    try:
        text = data.decode("utf-8")
        binary = "\0" in text
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        binary = True
    return {
        "text": text,
        "bytes": len(data),
        "truncated": truncated,
        "binary": binary,
        "base64": base64.b64encode(data).decode("ascii") if binary else None,
    }
