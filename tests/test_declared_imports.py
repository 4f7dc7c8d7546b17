"""Every third-party import is declared where its code is installed from.

A module imported by the server must come from a distribution in the server's
dependencies, one imported by the client from the client's, and one imported by the tests,
the benchmarks or the CI scripts from the development groups (or from the two projects
they run against). A package that arrives only as somebody else's dependency can vanish
with that dependency's next release.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
OUR_PACKAGES = {"wasmwiz", "wasmwiz_client", "tests", "bench"}


def _pyproject(path: Path) -> dict[str, Any]:
    with path.open("rb") as stream:
        return tomllib.load(stream)


def _names(requirements: Iterable[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in requirements}


def _group(groups: Mapping[str, list[str | dict[str, str]]], name: str) -> set[str]:
    """The distributions a PEP 735 dependency group names, its included groups too."""
    names: set[str] = set()
    for entry in groups[name]:
        if isinstance(entry, dict):
            names |= _group(groups, entry["include-group"])
        else:
            names |= _names([entry])
    return names


def declared() -> dict[str, set[str]]:
    """For each tree of code, the distributions it may import from."""
    server = _pyproject(ROOT / "pyproject.toml")
    client = _pyproject(ROOT / "client" / "pyproject.toml")
    server_deps = _names(server["project"]["dependencies"])
    client_deps = _names(client["project"]["dependencies"])
    dev = _group(server["dependency-groups"], "dev")
    development = dev | server_deps | client_deps
    return {
        "src/wasmwiz": server_deps,
        "client/src/wasmwiz_client": client_deps,
        "tests": development,
        "bench": development,
        ".ci": development,
    }


def _imported(path: Path) -> Iterator[tuple[int, str]]:
    """Each absolute import's top-level name, conditional and function-level ones too."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.partition(".")[0]


def _is_local(name: str, path: Path) -> bool:
    """Our packages, and a script's sibling module (the .ci/ scripts import no package)."""
    return (
        name in OUR_PACKAGES
        or (path.parent / f"{name}.py").exists()
        or (path.parent / name / "__init__.py").exists()
    )


def undeclared(tree: Path, allowed: set[str], providers: Mapping[str, list[str]]) -> list[str]:
    """`file:line: module` for each import under `tree` that `allowed` does not provide."""
    problems = []
    for path in sorted(tree.rglob("*.py")):
        for line, name in _imported(path):
            if name in sys.stdlib_module_names or name == "__future__" or _is_local(name, path):
                continue
            distributions = {canonicalize_name(d) for d in providers.get(name, [])}
            if not distributions & allowed:
                found = ", ".join(sorted(distributions)) or "no installed distribution"
                problems.append(f"{path.relative_to(tree)}:{line}: {name} (from {found})")
    return problems


def test_every_third_party_import_is_declared_for_its_tree() -> None:
    providers = importlib.metadata.packages_distributions()
    problems = [
        f"{relative}/{problem}"
        for relative, allowed in declared().items()
        for problem in undeclared(ROOT / relative, allowed, providers)
    ]
    assert not problems, "declare these in the tree's pyproject.toml:\n" + "\n".join(problems)


def test_the_check_flags_an_import_that_only_arrives_as_a_dependency(tmp_path: Path) -> None:
    (tmp_path / "uses_starlette.py").write_text("import json\nfrom starlette import types\n")
    providers = importlib.metadata.packages_distributions()

    assert undeclared(tmp_path, {"fastapi"}, providers) == [
        "uses_starlette.py:2: starlette (from starlette)"
    ]
    assert undeclared(tmp_path, {"fastapi", "starlette"}, providers) == []


def test_every_tree_it_checks_exists_and_holds_code() -> None:
    for relative in declared():
        assert list((ROOT / relative).rglob("*.py")), relative
