"""The README's quick start, docs/quickstart.md and the C and Zig guides, on a fresh clone,
exactly as written, command by command (issue 22).

The clone is of this repository's committed HEAD; `make run` makes its own virtualenv and
installs from the package registry as a newcomer's would (pip's cache makes it quick
after the first time). Only the port is ours (SERVER_PORT), so a CI machine's 8080 may be
taken; the docs' 127.0.0.1:8080 is read as that port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.examples.conftest import ROOT
from tests.examples.test_quickstart import matches, shown_as
from tests.fixtures.app import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
DOCS_URL = "http://127.0.0.1:8080"


@dataclass
class Clone:
    path: Path
    url: str
    key: str
    printed: str

    def env(self) -> dict[str, str]:
        return {**newcomer_env(), "WASMWIZ_URL": self.url, "WASMWIZ_API_KEY": self.key}

    def run(self, command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`command` pasted into bash in the clone, with the docs' address made ours."""
        return subprocess.run(
            ["bash", "-c", command.replace(DOCS_URL, self.url)],
            cwd=self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def newcomer_env() -> dict[str, str]:
    """A shell without this test run's virtualenv or settings."""
    drop = ("WASMWIZ_", "VIRTUAL_ENV", "DATABASE_URL", "API_SALT", "SECRET_KEY", "VAR_DIR")
    env = {name: value for name, value in os.environ.items() if not name.startswith(drop)}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def fenced(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", text, flags=re.DOTALL)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    path = tmp_path_factory.mktemp("newcomer") / "wasmwiz"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True, timeout=120)
    readme = (path / "README.md").read_text()
    quick_start = next(code for language, code in fenced(readme) if language == "sh")
    assert quick_start.splitlines()[0].startswith("make run ")
    port = free_port()
    log = path.parent / "make-run.log"
    env = {**newcomer_env(), "SERVER_PORT": str(port)}
    with log.open("wb") as output:
        # Its own process group: `make` and the server it starts are stopped together.
        make = subprocess.Popen(
            ["make", "run"],
            cwd=path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            assert make.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"make run never served:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        printed = log.read_text()
        key = re.search(r"^\s+(ww_[A-Za-z0-9_-]{43})$", printed, flags=re.MULTILINE)
        assert key is not None, printed
        yield Clone(path, url, key.group(1), printed)
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=60)


def test_make_run_installs_the_runtime_only_and_says_where_everything_is(clone: Clone) -> None:
    installing = [line for line in clone.printed.splitlines() if line.startswith("Installing")]
    assert installing == [
        "Installing WasmWiz and its runtime dependencies into .venv (once, about a minute)…"
    ]
    assert not (clone.path / ".venv" / "bin" / "pytest").exists()  # no development tools
    page = (clone.path / "docs" / "quickstart.md").read_text()
    shown = next(code for language, code in fenced(page) if language == "text")
    demo = clone.printed[clone.printed.index("Created the demo user") :]
    demo = demo[: demo.index("/api/v1/execute") + len("/api/v1/execute")]
    assert shown_as(
        shown.strip("\n").replace(DOCS_URL, clone.url),
        demo.replace(clone.key, "ww_…").replace(str(clone.path), "/…"),
    ), demo
    # The export line it printed, pasted as printed, gives the commands what they need.
    export = re.search(r"^\s+(export WASMWIZ_URL=\S+ WASMWIZ_API_KEY=\S+)$", demo, re.MULTILINE)
    assert export is not None
    done = subprocess.run(
        ["bash", "-c", f"{export.group(1)}\necho $WASMWIZ_URL $WASMWIZ_API_KEY"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == f"{clone.url} {clone.key}\n"


def test_the_quick_start_page_as_written(clone: Clone) -> None:
    found = fenced((clone.path / "docs" / "quickstart.md").read_text())
    ran = 0
    for (language, code), (next_language, expected) in zip(
        found, [*found[1:], ("", "")], strict=True
    ):
        lines = [line for line in code.splitlines() if line.strip()]
        if language not in ("sh", "python") or lines[0].startswith(("make ", "export ")):
            continue  # `make run` is the fixture; the export line is its environment
        if language == "python":
            # The page says which interpreter: the one `make run` installed the client into.
            (clone.path / "quickstart_snippet.py").write_text(code)
            code = ".venv/bin/python quickstart_snippet.py"
        done = clone.run(code)
        assert done.returncode == 0, f"{code}\n{done.stderr}"
        if next_language == "json":
            assert matches(json.loads(expected), json.loads(done.stdout)), (code, done.stdout)
            assert done.stdout.endswith("}\n")
        else:
            assert next_language == "text", code
            assert done.stdout == expected, (code, done.stdout)
        ran += 1
    assert ran == 8


@pytest.mark.parametrize(
    ("title", "language", "filename"),
    [
        ("C (and C++)", "c", "hello.c"),
        ("Zig", "zig", "hello.zig"),
    ],
)
def test_a_language_guide_as_written(
    clone: Clone, title: str, language: str, filename: str
) -> None:
    guide = (clone.path / "docs" / "writing-wasi-programs.md").read_text()
    start = guide.index(f"\n## {title}")
    section = guide[start : guide.find("\n## ", start + 1)]
    blocks = fenced(section)
    (clone.path / filename).write_text(next(code for lang, code in blocks if lang == language))
    expected = next(code for lang, code in blocks if lang == "text")
    outputs = []
    for code in (code for lang, code in blocks if lang == "sh"):
        for command in (line for line in code.splitlines() if line.strip()):
            done = clone.run(command)
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            outputs.append(done.stdout)
    assert outputs[-1] == expected
