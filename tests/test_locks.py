"""The locks in requirements/: what the runtime gets, and the two agreeing on what they share."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (REQUIREMENTS / lock).read_text()
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def test_the_runtime_gets_uvicorn_without_what_serve_does_not_use() -> None:
    runtime = pins("runtime.txt")

    assert {"uvicorn", "httptools"} <= runtime.keys()
    # The rest of uvicorn's "standard" extra: serve runs asyncio's loop, reloads nothing,
    # speaks no WebSocket and reads no YAML log configuration.
    assert {"uvloop", "watchfiles", "websockets", "pyyaml"} & runtime.keys() == set()


def test_the_dev_lock_pins_everything_the_runtime_lock_does_at_the_same_version() -> None:
    runtime, dev = pins("runtime.txt"), pins("dev.txt")

    assert {name: (version, dev.get(name)) for name, version in runtime.items()} == {
        name: (version, version) for name, version in runtime.items()
    }


def test_every_pin_carries_a_hash() -> None:
    for lock in ("runtime.txt", "dev.txt"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (REQUIREMENTS / lock).read_text())
        unhashed = [e.split()[0] for e in entries if _PIN.match(e) and "--hash=sha256:" not in e]
        assert unhashed == [], lock
