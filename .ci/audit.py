"""The dependency audit stage: pip-audit over the pinned dependencies, with a dated ignore list."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PUBLIC_OSV_URL = "https://api.osv.dev/v1/query"
# An ignore entry is a promise to look again: a year is the longest it may be put off.
MAX_IGNORE_DAYS = 365
REQUIRED_KEYS = {"id", "package", "reason", "expires"}


class AuditConfigError(Exception):
    """The ignore file is malformed, or one of its entries has expired."""


@dataclass(frozen=True)
class IgnoreEntry:
    id: str
    package: str
    reason: str
    expires: dt.date


def load_ignore_file(path: Path, today: dt.date) -> list[IgnoreEntry]:
    """The entries of `path`, refusing the whole file if any entry is malformed or stale."""
    with path.open("rb") as stream:
        document = tomllib.load(stream)
    problems: list[str] = []
    entries: list[IgnoreEntry] = []
    for number, raw in enumerate(document.get("ignore", []), start=1):
        where = f"{path}: entry {number} ({raw.get('id', 'no id')})"
        missing = REQUIRED_KEYS - raw.keys()
        unknown = raw.keys() - REQUIRED_KEYS
        if missing or unknown:
            problems.append(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")
            continue
        expires = raw["expires"]
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            problems.append(f"{where}: expires must be a bare TOML date such as 2026-06-30")
            continue
        if not all(
            isinstance(raw[key], str) and raw[key].strip() for key in REQUIRED_KEYS - {"expires"}
        ):
            problems.append(f"{where}: id, package and reason must be non-empty strings")
            continue
        if expires < today:
            problems.append(f"{where}: expired on {expires}; upgrade, or re-assess and re-date it")
            continue
        if expires > today + dt.timedelta(days=MAX_IGNORE_DAYS):
            problems.append(f"{where}: expires more than {MAX_IGNORE_DAYS} days ahead")
            continue
        entries.append(IgnoreEntry(raw["id"], raw["package"], raw["reason"], expires))
    if problems:
        raise AuditConfigError("\n".join(problems))
    return entries


def _in_range(events: list[dict[str, str]], version: Version) -> bool:
    """OSV's ECOSYSTEM range rule: events in version order open and close the affected span."""

    def key(event: dict[str, str]) -> Version:
        return Version(next(iter(event.values())))

    affected = False
    for event in sorted(events, key=key):
        kind, bound = next(iter(event.items()))
        if kind == "introduced":
            affected = affected or version >= Version(bound)
        elif kind == "fixed":
            affected = affected and version < Version(bound)
        elif kind == "last_affected":
            affected = affected and version <= Version(bound)
    return affected


def affects(record: dict[str, Any], name: str, version: str) -> bool:
    """Whether the OSV `record` names PyPI package `name` at `version` as affected."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return False
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI" or canonicalize_name(package["name"]) != name:
            continue
        if version in affected.get("versions", []):
            return True
        for span in affected.get("ranges", []):
            if span.get("type") == "ECOSYSTEM" and _in_range(span["events"], parsed):
                return True
    return False


def load_osv_directory(directory: Path) -> list[dict[str, Any]]:
    """Every OSV record (*.json, as in the OSV PyPI export) under `directory`."""
    records = [json.loads(path.read_text()) for path in sorted(directory.rglob("*.json"))]
    if not records:
        raise AuditConfigError(f"{directory}: no OSV advisories (*.json) found")
    return records


@contextmanager
def serve_osv(records: list[dict[str, Any]]) -> Iterator[str]:
    """Answer OSV's /v1/query on loopback from `records`, so pip-audit can audit offline."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            name = canonicalize_name(query["package"]["name"])
            vulns = [r for r in records if affects(r, name, query["version"])]
            body = json.dumps({"vulns": vulns} if vulns else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def reachable(url: str) -> bool:
    """Whether the OSV API at `url` answers a query at all."""
    query = json.dumps({"package": {"name": "pip", "ecosystem": "PyPI"}, "version": "0"})
    request = urllib.request.Request(url, data=query.encode(), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=15):  # noqa: S310 - fixed https URL
            return True
    except (urllib.error.URLError, TimeoutError, OSError):
        return False


def run_pip_audit(requirements: Path, osv_url: str, ignored: list[IgnoreEntry]) -> int:
    command = [
        sys.executable, "-m", "pip_audit",
        "--requirement", str(requirements),
        # The lock pins every package with its hashes, so nothing is resolved or installed
        # (pip-audit implies no dependency resolution when every pin carries a hash).
        "--require-hashes", "--disable-pip", "--strict",
        "--vulnerability-service", "osv", "--osv-url", osv_url,
        "--progress-spinner", "off", "--desc", "on", "--aliases", "on",
    ]  # fmt: skip
    for entry in ignored:
        command += ["--ignore-vuln", entry.id]
    return subprocess.run(command, check=False).returncode  # noqa: S603 - our own argv


def loud(message: str) -> None:
    bar = "!" * 78
    print(f"{bar}\n{message}\n{bar}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    # The dev lock holds every pin of the runtime lock too (make lock: they agree).
    parser.add_argument("--requirements", type=Path, default=Path("requirements/dev.txt"))
    parser.add_argument("--ignore-file", type=Path, default=Path(".ci/audit-ignore.toml"))
    parser.add_argument(
        "--check-ignore-file", action="store_true", help="only validate the ignore file"
    )
    args = parser.parse_args(argv)

    try:
        ignored = load_ignore_file(args.ignore_file, dt.date.today())
    except AuditConfigError as error:
        print(f"audit: the ignore file is refused:\n{error}", file=sys.stderr)
        return 1
    for entry in ignored:
        print(f"audit: ignoring {entry.id} ({entry.package}) until {entry.expires}: {entry.reason}")
    if args.check_ignore_file:
        return 0

    osv_dir = os.environ.get("WASMWIZ_AUDIT_OSV_DIR")
    if osv_dir:
        try:
            records = load_osv_directory(Path(osv_dir))
        except AuditConfigError as error:
            print(f"audit: {error}", file=sys.stderr)
            return 1
        print(f"audit: {len(records)} advisories from {osv_dir} (offline)", flush=True)
        with serve_osv(records) as url:
            return run_pip_audit(args.requirements, url, ignored)

    url = os.environ.get("WASMWIZ_AUDIT_OSV_URL", PUBLIC_OSV_URL)
    if not reachable(url):
        if os.environ.get("WASMWIZ_AUDIT_REQUIRED") == "1":
            print(f"audit: the advisory source {url} is unreachable", file=sys.stderr)
            return 1
        loud(
            f"DEPENDENCY AUDIT SKIPPED: the advisory source {url} is unreachable from here.\n"
            "Nothing was checked for known vulnerabilities. Set WASMWIZ_AUDIT_OSV_DIR to an\n"
            "OSV export, or WASMWIZ_AUDIT_REQUIRED=1 to fail instead (the GitHub workflow does)."
        )
        return 0
    return run_pip_audit(args.requirements, url, ignored)


if __name__ == "__main__":
    sys.exit(main())
