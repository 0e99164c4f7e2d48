"""The routes of the status page: `GET /` and `GET /static/{name}`, with a strict
Content-Security-Policy (same origin only: nothing inline, nothing external)."""

from __future__ import annotations

import math
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from exporter.engine.monitor import Monitor
from exporter.server.views import targets_view
from exporter.server.web.assets import load_assets
from exporter.server.web.page import render_page

__all__ = ["CSP", "DEFAULT_REFRESH", "parse_refresh", "status_routes"]

DEFAULT_REFRESH = 5.0
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def parse_refresh(raw: str | None) -> float:
    """`?refresh=N` seconds between updates: 0 turns it off; otherwise 0.5 s to 1 h."""
    if raw is None or raw == "":
        return DEFAULT_REFRESH
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_REFRESH
    if not math.isfinite(value):
        return DEFAULT_REFRESH
    if value <= 0:
        return 0.0
    return min(max(value, 0.5), 3600.0)


def status_routes(monitor: Monitor) -> list[BaseRoute]:
    assets = load_assets()
    urls = {name: asset.url for name, asset in assets.items()}

    async def page(request: Request) -> Response:
        html = render_page(
            targets_view(monitor, time.time()),
            refresh=parse_refresh(request.query_params.get("refresh")),
            query=request.query_params.get("q", "")[:200],
            assets=urls,
        )
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        # encoded so that no character the data holds can fail the page
        return HTMLResponse(html.encode("utf-8", "replace"), headers=headers)

    async def static(request: Request) -> Response:
        asset = assets.get(request.path_params["name"])
        if asset is None:
            return PlainTextResponse("not found\n", status_code=404, headers=SECURITY_HEADERS)
        headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "public, max-age=3600"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    return [Route("/", page), Route("/static/{name}", static)]
