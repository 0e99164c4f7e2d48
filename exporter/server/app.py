"""The exporter's HTTP side: /metrics, health endpoints, the status API, reload.

Built by a factory from the objects it shows, so tests drive it without a network."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from exporter.engine.monitor import Monitor
from exporter.metrics.slices import render_stream
from exporter.server.guards import NoStore, cross_origin
from exporter.server.snapshot import ViewCache, encoded_response
from exporter.util import net
from exporter.util.secrets import bearer_ok
from exporter.util.text import safe_json

__all__ = ["SafeJSONResponse", "create_app", "is_loopback", "reload_guard"]


class SafeJSONResponse(JSONResponse):
    """JSON that cannot fail on the data it shows (a target's text, a NaN): one bad string
    must not take the whole view down."""

    def render(self, content: Any) -> bytes:
        return safe_json(content)


ReloadFn = Callable[[], Awaitable[tuple[bool, str]]]


def is_loopback(request: Request) -> bool:
    """The socket's peer is a loopback address. Only the address counts: no name (a client
    could be called "localhost"), no X-Forwarded-For (uvicorn runs with proxy_headers off)."""
    host = request.client.host if request.client else ""
    return host != "localhost" and net.is_loopback(host)


def reload_guard(token: str | None, allow_loopback: bool = True) -> Callable[[Request], bool]:
    """Who may POST /-/reload: a client presenting `token` as a bearer token (when one is
    set), else a loopback peer (when allowed)."""

    def allowed(request: Request) -> bool:
        if token is not None and bearer_ok(request.headers.get("authorization"), token):
            return True
        return allow_loopback and is_loopback(request)

    return allowed


def create_app(
    monitor: Monitor,
    registry: CollectorRegistry,
    *,
    ready: Callable[[], bool] = lambda: True,
    troubles: Callable[[], list[str]] = list,
    reload: ReloadFn | None = None,
    reload_allowed: Callable[[Request], bool] = is_loopback,
    extra_routes: Sequence[BaseRoute] = (),
    before_scrape: Callable[[], Awaitable[None]] | None = None,
    views: ViewCache | None = None,
) -> Starlette:
    """The Starlette app; `extra_routes` come from the recovery receiver and the status page,
    which shares `views` (the snapshot the read endpoints render from); `before_scrape`
    (MonitorCollector.refresh) brings cached text up to date in slices that yield, so the
    render that follows holds the event loop only to join it."""
    views = views or ViewCache(monitor)

    async def metrics(request: Request) -> Response:
        if before_scrape is not None:
            await before_scrape()
        # our own writer: byte-identical to prometheus_client's, several times faster, and
        # streamed (gzipped piece by piece, off the loop): the body is never whole in memory
        pieces, content_type = render_stream(registry, request.headers.get("accept", ""))
        return StreamingResponse(pieces, media_type=content_type)

    async def healthy(request: Request) -> Response:
        return PlainTextResponse("llm-heartbeat is healthy.\n")

    async def is_ready(request: Request) -> Response:
        if not ready():
            return PlainTextResponse("llm-heartbeat is not ready.\n", status_code=503)
        # a history that cannot be written: probes and /metrics go on, but records wait in
        # memory and would be lost with the process; say so where an orchestrator looks
        problems = troubles()
        if problems:
            text = "llm-heartbeat is not ready: " + "; ".join(problems) + "\n"
            return PlainTextResponse(text, status_code=503)
        return PlainTextResponse("llm-heartbeat is ready.\n")

    async def targets(request: Request) -> Response:
        body = await views.body("api", safe_json)
        return encoded_response(request, body, "application/json")

    async def one_target(request: Request) -> Response:
        view = views.target(request.path_params["name"])
        if view is None:
            return SafeJSONResponse({"error": "no such target"}, status_code=404)
        return SafeJSONResponse(view)

    async def do_reload(request: Request) -> Response:
        if reload is None:
            return SafeJSONResponse({"error": "reload is not available"}, status_code=404)
        why = cross_origin(request)
        if why is not None:  # a page elsewhere must not reload through a loopback browser
            return SafeJSONResponse(
                {"error": f"reload refused: a cross-origin browser request ({why})"},
                status_code=403,
            )
        if not reload_allowed(request):
            return SafeJSONResponse(
                {"error": "reload needs the reload token or a loopback peer"}, status_code=403
            )
        ok, message = await reload()
        body: dict[str, Any] = {"status": "ok" if ok else "error", "message": message}
        return SafeJSONResponse(body, status_code=200 if ok else 400)

    routes: list[BaseRoute] = [
        Route("/metrics", metrics),
        Route("/-/healthy", healthy),
        Route("/-/ready", is_ready),
        Route("/-/reload", do_reload, methods=["POST"]),
        Route("/api/v1/targets", targets),
        Route("/api/v1/targets/{name}", one_target),
        *extra_routes,
    ]
    # the status JSON for a thousand targets is megabytes; phones and Prometheus take gzip
    # (level 1: most of the saving for a fraction of the CPU of the default 9; Starlette
    # compresses bodies over 128 KiB, /metrics among them, in a worker thread, and zlib
    # releases the GIL while it works: off the event loop)
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(NoStore),
            Middleware(GZipMiddleware, minimum_size=4096, compresslevel=1),
        ],
    )
