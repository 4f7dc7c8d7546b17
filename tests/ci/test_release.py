"""The release guard: one version, in __init__.py, agreeing with the tag and the changelog."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import wasmwiz
import wasmwiz_client
from tests.ci.gate import load_ci_script

release = load_ci_script("release_check")

CHANGELOG = """# Changelog

## [Unreleased]

## [1.2.0] - 2026-02-01

### Added
- Something new.

## [1.1.0]

### Fixed
- Something old.

## [1.0.0] - 2025-12-01
"""


def _tree(tmp_path: Path, version: str) -> Path:
    (tmp_path / "src" / "wasmwiz").mkdir(parents=True)
    (tmp_path / "src" / "wasmwiz" / "__init__.py").write_text(
        f'"""WasmWiz."""\n\n__version__ = "{version}"\n'
    )
    (tmp_path / "CHANGELOG.md").write_text(CHANGELOG)
    return tmp_path


def test_the_installed_distribution_takes_its_version_from_the_package() -> None:
    assert importlib.metadata.version("wasmwiz") == wasmwiz.__version__


def test_the_client_distribution_takes_its_own_version_from_its_package() -> None:
    assert importlib.metadata.version("wasmwiz-client") == wasmwiz_client.__version__


def test_a_matching_tag_yields_its_changelog_section(tmp_path: Path) -> None:
    notes = release.check("v1.2.0", _tree(tmp_path, "1.2.0"))

    assert notes == "### Added\n- Something new.\n"


@pytest.mark.parametrize(
    ("tag", "version", "problem"),
    [
        ("v1.2.1", "1.2.0", "does not match __version__ 1.2.0"),
        ("v1.3.0", "1.3.0", r"no '## \[1.3.0\] - YYYY-MM-DD' section"),
        ("v1.1.0", "1.1.0", "has no date"),
        ("v1.0.0", "1.0.0", "is empty"),
    ],
)
def test_a_disagreement_stops_the_release(
    tmp_path: Path, tag: str, version: str, problem: str
) -> None:
    with pytest.raises(release.ReleaseError, match=problem):
        release.check(tag, _tree(tmp_path, version))
