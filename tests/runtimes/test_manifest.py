"""runtimes.json describes the committed files, which ship as package data."""

from __future__ import annotations

import hashlib

from tests.runtimes.conftest import RUNTIMES, manifest


def test_the_manifest_lists_both_runtimes_run_from_stdin() -> None:
    entries = {entry["name"]: entry for entry in manifest()["runtimes"]}

    assert set(entries) == {"quickjs", "lua"}
    assert entries["quickjs"]["language"] == "JavaScript"
    assert entries["lua"]["language"] == "Lua"
    assert entries["lua"]["version"].startswith("5.4.")
    assert all(entry["usage"] == "stdin" for entry in entries.values())


def test_each_file_is_what_the_manifest_says() -> None:
    for entry in manifest()["runtimes"]:
        data = RUNTIMES.joinpath(entry["file"]).read_bytes()

        assert data.startswith(b"\0asm\x01\0\0\0"), entry["file"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert len(data) == entry["size"], entry["file"]
        assert len(entry["source"]["sha256"]) == 64
        licence = RUNTIMES.joinpath(entry["license_file"]).read_text()
        assert "Permission is hereby granted" in licence
        assert entry["license"].startswith("MIT")
