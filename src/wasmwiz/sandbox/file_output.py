"""Which files a run returns: `collect` glob patterns, matched against its directory.

A pattern is a relative path whose components may use `*` (any characters but `/`), `?`
(one character but `/`) and `[...]` (one of a set, `[!...]` none of it); a component
that is exactly `**` matches any number of directories, none included, so `**` alone
is every file and `out/**` everything under `out`. Only regular files are returned,
found by walking the directory without ever following a symlink.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from wasmwiz.sandbox.memfs import MemoryFileSystem
from wasmwiz.sandbox.models import CollectedFile

MAX_PATTERNS = 64
MAX_PATTERN_LENGTH = 1024


class InvalidPattern(ValueError):
    """A `collect` pattern that is not a relative glob this module accepts."""


def compile_patterns(patterns: Sequence[str]) -> re.Pattern[str]:
    """One regular expression matching a path when any pattern does."""
    if len(patterns) > MAX_PATTERNS:
        raise InvalidPattern(f"at most {MAX_PATTERNS} patterns")
    alternatives = [_translate(pattern) for pattern in patterns]
    return re.compile("|".join(f"(?:{alternative})" for alternative in alternatives) or "(?!)")


def check_patterns(patterns: Sequence[str]) -> None:
    compile_patterns(patterns)


def _translate(pattern: str) -> str:
    if not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"a pattern must have 1 to {MAX_PATTERN_LENGTH} characters")
    if pattern.startswith("/"):
        raise InvalidPattern(f"{pattern!r} is absolute: patterns are relative to the directory")
    if "\0" in pattern or "\\" in pattern:
        raise InvalidPattern(f"{pattern!r} contains a NUL or a backslash")
    components = [part for part in pattern.split("/") if part not in ("", ".")]
    if ".." in components:
        raise InvalidPattern(f"{pattern!r} contains '..'")
    if not components:
        raise InvalidPattern(f"{pattern!r} names no file")
    regex = ""
    for index, component in enumerate(components):
        last = index == len(components) - 1
        if component == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _translate_component(component) + ("" if last else "/")
    return regex + r"\Z"


def _translate_component(component: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(component):
        char = component[index]
        index += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = component.find("]", index + 1 if component[index : index + 1] in "!]" else index)
            if end == -1:
                out.append(re.escape(char))
                continue
            body = component[index:end]
            index = end + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("^", "\\^")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def collect(
    fs: MemoryFileSystem, patterns: Sequence[str], max_output_bytes: int
) -> tuple[tuple[CollectedFile, ...], bool]:
    """The matching regular files, by path; contents while they fit in
    `max_output_bytes`, after that listed with their size and digest only."""
    if not patterns:
        return (), False
    matcher = compile_patterns(patterns)
    files: list[CollectedFile] = []
    room = max_output_bytes
    truncated = False
    for path, file in fs.regular_files():
        if not matcher.match(path):
            continue
        data = bytes(file.data)
        fits = len(data) <= room and not truncated
        if fits:
            room -= len(data)
        else:
            truncated = True
        files.append(
            CollectedFile(
                path=path,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                content=data if fits else None,
            )
        )
    return tuple(files), truncated
