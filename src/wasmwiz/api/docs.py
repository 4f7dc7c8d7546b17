"""The API's documentation: /openapi.json, and /docs (Swagger UI) and /redoc (ReDoc) served
from assets vendored in the package.

No CDN: the pages work with no internet access, and every script is a file of ours, so
they run under `script-src 'self'` (the initialisers live in static/docs/*-init.js).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from wasmwiz.api.openapi import install_openapi

STATIC_DIR = Path(__file__).parent / "static" / "docs"
STATIC_PATH = "/docs/static"

# Relative URLs, so that the pages also work behind a proxy that mounts us under a prefix.
_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API reference</title>
  <link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
  <link rel="stylesheet" href="docs/static/swagger-ui.css">
  <style>{style}</style>
</head>
<body>
  {back}
  <div id="swagger-ui" data-spec-url="{spec_url}"></div>
  <script src="docs/static/swagger-ui-bundle.js"></script>
  <script src="docs/static/swagger-init.js"></script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API reference</title>
  <link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
  <style>{style}</style>
</head>
<body>
  {back}
  <div id="redoc" data-spec-url="{spec_url}"></div>
  <script src="docs/static/redoc.standalone.js"></script>
  <script src="docs/static/redoc-init.js"></script>
</body>
</html>
"""


# The way back to the web pages; and no default 8 px body margin around ReDoc's layout.
_STYLE = (
    "body{margin:0}.wasmwiz-back{font:14px/1.4 system-ui,sans-serif;padding:8px 16px;"
    "background:#1f2933;color:#fff}.wasmwiz-back a{color:#fff}"
)
_BACK = (
    '<nav class="wasmwiz-back" aria-label="WasmWiz"><a href="./">WasmWiz pages</a> · '
    '<a href="docs">Swagger UI</a> · <a href="redoc">ReDoc</a></nav>'
)


def install_api_docs(app: FastAPI) -> None:
    """Serve the OpenAPI document (at `app.openapi_url`), /docs, /redoc and their assets."""
    install_openapi(app)
    spec_url = escape((app.openapi_url or "/openapi.json").lstrip("/"), quote=True)
    title = escape(app.title)
    swagger = _SWAGGER_PAGE.format(title=title, spec_url=spec_url, style=_STYLE, back=_BACK)
    redoc = _REDOC_PAGE.format(title=title, spec_url=spec_url, style=_STYLE, back=_BACK)

    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger)

    async def redoc_ui() -> HTMLResponse:
        return HTMLResponse(redoc)

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc_ui, methods=["GET"], include_in_schema=False)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="api-docs-static")
