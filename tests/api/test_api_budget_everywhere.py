"""Every API route that takes a key spends from the account's API budget, but the runs.

The routes are found by walking the app `create_app` builds, not listed here: a route
added tomorrow is checked too. A route that authenticates without spending would let one
account make calls, each reading the database, without any limit.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.dependencies.models import Dependant

from tests.fixtures.app import make_settings
from tests.web.test_csrf_everywhere import all_routes
from wasmwiz.api.dependencies import authenticate, spend_api_call
from wasmwiz.api.openapi import RUN_PATHS
from wasmwiz.app import create_app


def calls(dependant: Dependant) -> set[object]:
    """Every function the route's dependencies call, however deep."""
    found: set[object] = {dependant.call}
    for sub in dependant.dependencies:
        found |= calls(sub)
    return found


def test_every_keyed_route_but_the_runs_spends_the_api_budget(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/unused.db"))
    keyed = {
        (method, path): spend_api_call in found
        for path, route in all_routes(app.routes)
        if authenticate in (found := calls(route.dependant))
        for method in route.methods
    }
    assert len(keyed) >= 30, keyed  # jobs, modules, runtimes, keys, usage, webhooks, admin
    free = sorted(path for (_, path), spends in keyed.items() if not spends)
    assert free == sorted(RUN_PATHS)
