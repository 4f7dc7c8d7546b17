"""Every command in docs/quickstart.md runs against a live server, and its output is checked.

`make run` is run as the Makefile runs it (its `wasmwiz` steps, on a temporary VAR_DIR and
a free port); the key it prints goes into WASMWIZ_API_KEY for the rest. Each following
`sh` or `python` block runs as written, and the `json` or `text` block after it is the
output it must print (in JSON, "…" stands for any value; keys not shown are not checked).
`make test` is the one command not run here: it is this suite.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.examples.conftest import ROOT
from tests.fixtures.app import free_port

QUICKSTART = ROOT / "docs" / "quickstart.md"
MAKEFILE = ROOT / "Makefile"
BIN = Path(sys.executable).parent
ELLIPSIS = "…"


def make_run_steps() -> list[list[str]]:
    """The commands of the Makefile's `run` target, with $(BIN) resolved."""
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", MAKEFILE.read_text(), flags=re.MULTILINE)
    assert recipe is not None
    return [
        line.strip().replace("$(BIN)", str(BIN)).split() for line in recipe.group(1).splitlines()
    ]


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """Runs `make run`'s steps; yields the URL, the demo key and what `demo` printed."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WASMWIZ_")},
        "VAR_DIR": str(tmp_path / "var"),
        "SERVER_PORT": str(port),
    }
    for name in ("DATABASE_URL", "API_SALT", "RATE_LIMIT_BACKEND", "REDIS_URL"):
        env.pop(name, None)
    *setup, serve = make_run_steps()
    assert serve[-1] == "serve", serve
    outputs = []
    for step in setup:
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    demo = outputs[-1]
    key = re.search(r"^\s+(ww_\S+)$", demo, flags=re.MULTILINE)
    assert key is not None, demo
    assert "Run the bundled hello-world module with:" in demo
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(serve, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "wasmwiz serve did not start"
            time.sleep(0.2)
        yield url, key.group(1), demo
    finally:
        server.terminate()
        server.wait(timeout=30)


def blocks() -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", QUICKSTART.read_text(), flags=re.DOTALL)


def matches(expected: Any, actual: Any) -> bool:
    if expected == ELLIPSIS:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            name in actual and matches(value, actual[name]) for name, value in expected.items()
        )
    return bool(expected == actual)


def shown_as(shown: str, actual: str) -> bool:
    """`actual` is what the docs show, where "…" stands for any text on its line."""
    pattern = ".*?".join(re.escape(part) for part in shown.split(ELLIPSIS))
    return re.fullmatch(pattern, actual.strip("\n")) is not None


def test_every_quickstart_command(make_run: tuple[str, str, str], tmp_path: Path) -> None:
    url, key, demo = make_run
    # What `make run` prints is what the page shows, with this run's key, port and path.
    printed = next(code for language, code in blocks() if language == "text")
    assert shown_as(
        printed.strip("\n").replace("127.0.0.1:8080", url.removeprefix("http://")),
        demo.replace(key, "ww_…"),
    ), demo
    # The curl command that `make run` printed works as printed.
    printed = demo.split("Run the bundled hello-world module with:", 1)[1]
    curl = " ".join(line.strip().rstrip("\\") for line in printed.strip().splitlines())
    shown = subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)["output"] == "Hello, WasmWiz!\n", shown.stdout

    env = {**os.environ, "WASMWIZ_URL": url, "WASMWIZ_API_KEY": key}
    found = blocks()
    ran = 0
    for (language, code), (next_language, expected) in zip(
        found, [*found[1:], ("", "")], strict=True
    ):
        if language not in ("sh", "python"):
            continue
        lines = [line for line in code.splitlines() if line.strip()]
        if all(line.startswith(("make ", "export ")) for line in lines):
            # `make run` is the fixture above; the exports are the env given to each command.
            assert "export WASMWIZ_URL=http://127.0.0.1:8080" in code or "make" in code
            continue
        command = ["bash", "-c", code] if language == "sh" else [sys.executable, "-c", code]
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{code}\n{done.stderr}"
        if next_language == "json":
            assert matches(json.loads(expected), json.loads(done.stdout)), (code, done.stdout)
            assert done.stdout.endswith("}\n"), "the prompt would land after the `}`"
        elif next_language == "text":
            assert done.stdout == expected, (code, done.stdout)
        else:
            pytest.fail(f"no expected output after:\n{code}")
        ran += 1
    assert ran == 8


def test_the_readme_api_example(make_run: tuple[str, str, str]) -> None:
    url, key, _ = make_run
    readme = (ROOT / "README.md").read_text()
    code = next(
        code
        for language, code in re.findall(r"```(\w+)\n(.*?)```", readme, flags=re.DOTALL)
        if language == "python"
    )
    assert len(code.strip().splitlines()) <= 10
    code = (
        code.replace('"http://127.0.0.1:8080"', repr(url))
        .replace('"ww_…"', repr(key))
        .replace(
            'Path("prog.wasm")', "Path(" + repr(str(ROOT / "src/wasmwiz/examples/echo.wat")) + ")"
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "success 0\nhello\n"
