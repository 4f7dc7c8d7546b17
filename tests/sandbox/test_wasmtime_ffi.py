"""The private-API module accepts only the wasmtime major version it was written for."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from wasmwiz.sandbox import wasmtime_ffi


def test_the_installed_wasmtime_is_the_supported_major() -> None:
    installed = importlib.metadata.version("wasmtime")

    wasmtime_ffi._check_version(installed)  # what the import itself did

    assert installed.split(".")[0] == str(wasmtime_ffi.SUPPORTED_MAJOR)


@pytest.mark.parametrize("other", ["51.0.0", "49.0.2", "5.0.0"])
def test_another_major_fails_clearly(other: str) -> None:
    with pytest.raises(
        ImportError, match=rf"needs wasmtime 50\.x .* wasmtime {other} is installed"
    ):
        wasmtime_ffi._check_version(other)


def test_private_api_is_used_nowhere_else() -> None:
    sandbox = Path(wasmtime_ffi.__file__).parent
    offenders = [
        path.name
        for path in sandbox.glob("*.py")
        if path.name != "wasmtime_ffi.py"
        and any(
            marker in path.read_text()
            for marker in (
                "wasmtime._",
                "from wasmtime import _",
                "._context()",
                "._instance",
                "._invalidate(",
                "._from_ptr(",
            )
        )
    ]

    assert offenders == []
