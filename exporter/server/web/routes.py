"""The routes of the status page: `GET /` and `GET /static/{name}`, with a strict
Content-Security-Policy (same origin only: nothing inline, nothing external)."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from exporter.engine.monitor import Monitor
from exporter.server.snapshot import ViewCache, encoded_response
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


def status_routes(monitor: Monitor, views: ViewCache | None = None) -> list[BaseRoute]:
    """The page renders from the shared snapshot (`views`), never from the live monitor."""
    assets = load_assets()
    urls = {name: asset.url for name, asset in assets.items()}
    views = views or ViewCache(monitor)

    async def page(request: Request) -> Response:
        refresh = parse_refresh(request.query_params.get("refresh"))
        query = request.query_params.get("q", "")[:200]

        def render(view: dict[str, Any]) -> bytes:
            html = render_page(view, refresh=refresh, query=query, assets=urls)
            # encoded so that no character the data holds can fail the page
            return html.encode("utf-8", "replace")

        body = await views.body(("page", refresh, query), render)
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        return encoded_response(request, body, "text/html; charset=utf-8", headers)

    async def static(request: Request) -> Response:
        asset = assets.get(request.path_params["name"])
        if asset is None:
            return PlainTextResponse("not found\n", status_code=404, headers=SECURITY_HEADERS)
        headers = {**SECURITY_HEADERS, "ETag": asset.etag, "Cache-Control": "public, max-age=3600"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    return [Route("/", page), Route("/static/{name}", static)]
