"""The audit stage's own rules: OSV range matching and the dated ignore file."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path

import pytest

from tests.ci.gate import ROOT, load_ci_script

TODAY = dt.date(2026, 3, 1)


audit = load_ci_script("audit")


def _record(*events: dict[str, str], versions: tuple[str, ...] = ()) -> dict[str, object]:
    return {
        "id": "GHSA-test",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Some_Package"},
                "ranges": [{"type": "ECOSYSTEM", "events": list(events)}],
                "versions": list(versions),
            }
        ],
    }


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("0.9", False),
        ("1.0", True),
        ("1.4.2", True),
        ("1.5", False),
        ("2.0", True),
        ("2.1", True),
        ("2.2", False),
    ],
)
def test_ranges_open_at_introduced_and_close_at_fixed(version: str, affected: bool) -> None:
    record = _record(
        {"introduced": "2.0"}, {"fixed": "1.5"}, {"introduced": "1.0"}, {"last_affected": "2.1"}
    )

    assert audit.affects(record, "some-package", version) is affected


def test_listed_versions_and_names_are_matched_canonically() -> None:
    record = _record({"introduced": "5.0"}, versions=("1.2.3",))

    assert audit.affects(record, "some-package", "1.2.3")
    assert not audit.affects(record, "some-package", "1.2.4")
    assert not audit.affects(record, "other-package", "1.2.3")


def test_the_loopback_osv_service_answers_like_the_real_one() -> None:
    record = _record({"introduced": "0"}, {"fixed": "1.0"})

    def query(version: str) -> dict[str, object]:
        body = json.dumps(
            {"package": {"name": "Some.Package", "ecosystem": "PyPI"}, "version": version}
        ).encode()
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    with audit.serve_osv([record]) as url:
        assert query("0.5") == {"vulns": [record]}
        assert query("1.0") == {}


def _ignore_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "audit-ignore.toml"
    path.write_text(body)
    return path


def _entry(expires: str, **overrides: str) -> str:
    fields = {"id": "GHSA-abcd", "package": "jinja2", "reason": "Not reachable.", **overrides}
    lines = [f'{key} = "{value}"' for key, value in fields.items()]
    return "[[ignore]]\n" + "\n".join(lines) + f"\nexpires = {expires}\n"


def test_a_current_entry_is_accepted(tmp_path: Path) -> None:
    path = _ignore_file(tmp_path, _entry("2026-03-01"))

    [entry] = audit.load_ignore_file(path, TODAY)

    assert (entry.id, entry.expires) == ("GHSA-abcd", dt.date(2026, 3, 1))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (_entry("2026-02-28"), "expired on 2026-02-28"),
        (_entry("2027-03-02"), "more than 365 days ahead"),
        (_entry('"2026-06-01"'), "bare TOML date"),
        (_entry("2026-06-01", reason=" "), "non-empty strings"),
        ('[[ignore]]\nid = "GHSA-abcd"\n', "missing ['expires', 'package', 'reason']"),
        (_entry("2026-06-01", owner="me"), "unknown ['owner']"),
    ],
)
def test_a_stale_or_malformed_entry_refuses_the_file(
    tmp_path: Path, body: str, problem: str
) -> None:
    path = _ignore_file(tmp_path, _entry("2026-06-01", id="GHSA-fine") + "\n" + body)

    with pytest.raises(audit.AuditConfigError, match=problem.replace("[", r"\[")):
        audit.load_ignore_file(path, TODAY)


def test_the_checked_in_ignore_file_is_valid_today() -> None:
    assert (
        audit.main(
            ["--check-ignore-file", "--ignore-file", str(ROOT / ".ci" / "audit-ignore.toml")]
        )
        == 0
    )
