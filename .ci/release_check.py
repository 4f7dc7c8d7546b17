"""Release guard: the tag, `wasmwiz.__version__` and a dated CHANGELOG.md section must agree."""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Keep a Changelog: "## [1.2.3] - 2026-01-31".
SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$")


class ReleaseError(Exception):
    """The tag, the version and the changelog disagree."""


def package_version(init_file: Path) -> str:
    """`__version__` from the package's __init__.py, read without importing it."""
    for node in ast.parse(init_file.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise ReleaseError(f"{init_file}: no __version__ = '…' assignment")


def changelog_section(changelog: str, version: str) -> str:
    """The body of the dated section for `version`."""
    lines = changelog.splitlines()
    for index, line in enumerate(lines):
        match = SECTION.match(line)
        if not match or match["version"] != version:
            continue
        if not match["date"]:
            raise ReleaseError(f"CHANGELOG.md: the section for {version} has no date")
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.startswith("## "):
                break
            body.append(following)
        if not "".join(body).strip():
            raise ReleaseError(f"CHANGELOG.md: the section for {version} is empty")
        return "\n".join(body).strip() + "\n"
    raise ReleaseError(f"CHANGELOG.md: no '## [{version}] - YYYY-MM-DD' section")


def check(tag: str, root: Path = ROOT) -> str:
    """The release notes for `tag`, once the tag, version and changelog are seen to agree."""
    version = package_version(root / "src" / "wasmwiz" / "__init__.py")
    if tag != f"v{version}":
        raise ReleaseError(f"tag {tag} does not match __version__ {version} (expected v{version})")
    return changelog_section((root / "CHANGELOG.md").read_text(), version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tag", help="the release tag, e.g. v1.2.3")
    parser.add_argument("--notes", action="store_true", help="print the changelog section")
    args = parser.parse_args(argv)
    try:
        notes = check(args.tag)
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    print(notes if args.notes else f"release: {args.tag} agrees with the code and the changelog")
    return 0


if __name__ == "__main__":
    sys.exit(main())
