"""The registry of problem codes is the one list: what is raised, documented or mapped by
the client is in it, and everything in it is raised somewhere."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

from wasmwiz.problem_codes import MODULE_REFUSALS, ProblemCode
from wasmwiz_client._protocol import RetryPolicy
from wasmwiz_client.errors import _BY_CODE

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "wasmwiz"
ERRORS_DOC = ROOT / "docs" / "errors.md"
# The registry itself, and the OpenAPI builder, which documents codes but raises none. The
# client (client/, a distribution of its own) keeps its own strings, since it cannot import
# the server, and is checked against the registry below.
NOT_RAISE_SITES = {"problem_codes.py", "api/openapi.py"}
# The helpers whose argument at this position is a problem code.
CODE_ARGUMENT = {"ModuleRefused": 0, "ShapeExceeded": 0, "problem_bytes": 1}
_TABLE_ROW = re.compile(r"^\| `([a-z0-9_]+)` \| (\d{3}) \|", re.MULTILINE)


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        yield name, ast.parse(path.read_text(), filename=str(path))


def _string_codes(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Strings where a code belongs, and string literals that spell a registered code."""
    registered = {str(code) for code in ProblemCode}
    for node in ast.walk(tree):
        places: list[ast.expr] = []
        if isinstance(node, ast.Call):
            places += [keyword.value for keyword in node.keywords if keyword.arg == "code"]
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            position = CODE_ARGUMENT.get(name)
            if position is not None and len(node.args) > position:
                places.append(node.args[position])
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(
                isinstance(target, ast.Name) and target.id == "default_code" for target in targets
            ):
                places.append(node.value)
        elif isinstance(node, ast.Constant) and node.value in registered:
            places.append(node)
        for place in places:
            if isinstance(place, ast.Constant) and isinstance(place.value, str):
                yield place.lineno, place.value
            elif isinstance(place, ast.JoinedStr):
                yield place.lineno, ast.unparse(place)


def _documented() -> dict[str, int]:
    return {code: int(status) for code, status in _TABLE_ROW.findall(ERRORS_DOC.read_text())}


def test_no_code_is_raised_as_a_string() -> None:
    strays = sorted(
        {
            f"src/wasmwiz/{name}:{line}: {code!r}"
            for name, tree in _modules()
            if name not in NOT_RAISE_SITES
            for line, code in _string_codes(tree)
        }
    )
    assert not strays, "use a ProblemCode member, not a string:\n" + "\n".join(strays)


def test_every_registered_code_is_raised_somewhere() -> None:
    used: set[str] = set()
    for name, tree in _modules():
        if name in NOT_RAISE_SITES:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ProblemCode"
            ):
                used.add(str(ProblemCode[node.attr]))
    unused = sorted(str(code) for code in ProblemCode if str(code) not in used)
    assert not unused, f"registered but never raised in src: {unused}"


def test_docs_errors_md_lists_the_registry_with_its_statuses() -> None:
    documented = _documented()
    registered = {str(code): code.status for code in ProblemCode}
    assert sorted(set(documented) - set(registered)) == [], "documented, not registered"
    assert sorted(set(registered) - set(documented)) == [], "registered, not documented"
    wrong = {code: (status, registered[code]) for code, status in documented.items()}
    assert {code: pair for code, pair in wrong.items() if pair[0] != pair[1]} == {}


def test_the_client_maps_only_registered_codes() -> None:
    registered = {str(code) for code in ProblemCode}
    assert set(_BY_CODE) - registered == set()
    assert set(RetryPolicy().codes) - registered == set()


def test_each_code_is_a_stable_identifier_with_a_real_status() -> None:
    for code in ProblemCode:
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,63}", code), code
        assert code.name == code.upper()
        assert 400 <= HTTPStatus(code.status).value < 600
        assert code.summary
        assert code.meaning.endswith(".")
    assert ProblemCode.WASM_TOO_LARGE in MODULE_REFUSALS
    assert ProblemCode.INVALID_REQUEST not in MODULE_REFUSALS
