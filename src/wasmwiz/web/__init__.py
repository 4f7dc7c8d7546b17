"""The HTML adapter: pages over the same services as the JSON API."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from wasmwiz.web import accounts, admin, keys, playground, usage


def install_web(app: FastAPI) -> None:
    """Mount the pages and their static files (CSS, JS) on the app."""
    for module in (accounts, playground, keys, usage, admin):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(files("wasmwiz.web") / "static")), "static")


__all__ = ["install_web"]
