"""`/api/v1/maintenance`: announce a target's maintenance for a while, end it early, list it.

Writing is guarded like `/-/reload` (the reload token as a bearer token, or a loopback peer);
reading is open like `/api/v1/targets`. `llm-heartbeat maintenance` calls these routes.

    POST   /api/v1/maintenance            {"target": "qwen3-4b", "duration": "30m", "reason": "..."}
    DELETE /api/v1/maintenance/{target}   ends it now (an announced or a configured window)
    GET    /api/v1/maintenance            the windows active now
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from exporter.config.durations import parse_duration
from exporter.engine.monitor import Monitor
from exporter.errors import BodyTooLarge
from exporter.util.http import read_capped
from exporter.util.text import clean_text, safe_json

__all__ = ["maintenance_routes"]

log = logging.getLogger(__name__)

MAX_BODY = 4096
_HEADERS = {"Cache-Control": "no-store"}


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(safe_json(body), status, headers=_HEADERS, media_type="application/json")


def maintenance_routes(
    monitor: Monitor,
    allowed: Callable[[Request], bool],
    wake: Callable[[str], None],
    changed: Callable[[], None] = lambda: None,
) -> list[BaseRoute]:
    """The routes; `allowed` is the reload guard, `wake` probes a target at once (when its
    maintenance ends it is judged on fresh results), `changed` drops the read views' snapshot
    so the page and the API show an operator's announcement at once."""

    async def listing(request: Request) -> Response:
        now = monitor.clock()
        windows = monitor.maintenance.all_active(now, monitor.targets)
        return _answer({"now": now, "maintenance": [w.as_dict() for w in windows]})

    async def start(request: Request) -> Response:
        if not allowed(request):
            return _answer({"error": "maintenance needs the reload token or a loopback peer"}, 403)
        try:
            raw = await read_capped(
                request.stream(), MAX_BODY, request.headers.get("content-length")
            )
            data = json.loads(raw or b"{}")
        except BodyTooLarge:
            return _answer({"error": f"body larger than {MAX_BODY} bytes"}, 413)
        except ValueError:
            return _answer({"error": "the body must be a JSON object"}, 400)
        if not isinstance(data, dict) or not isinstance(data.get("target"), str):
            return _answer({"error": 'give {"target": NAME, "duration": "30m"}'}, 400)
        target = data["target"]
        if target not in monitor.targets:
            return _answer({"error": "no such target"}, 404)
        try:
            seconds = parse_duration(data.get("duration"))
            reason = clean_text(str(data.get("reason") or ""), 200)
            window = monitor.maintenance.announce(target, monitor.clock(), seconds, reason)
        except ValueError as exc:
            return _answer({"error": f"duration: {exc}"}, 400)
        changed()
        log.warning(
            "target %s: maintenance announced for %.0fs (%s): alerts and recovery hold off",
            target,
            seconds,
            reason or "no reason given",
        )
        return _answer({"status": "ok", "maintenance": window.as_dict()})

    async def end(request: Request) -> Response:
        if not allowed(request):
            return _answer({"error": "maintenance needs the reload token or a loopback peer"}, 403)
        target = request.path_params["target"]
        if target not in monitor.targets:
            return _answer({"error": "no such target"}, 404)
        window = monitor.maintenance.end(target, monitor.clock())
        if window is None:
            return _answer({"error": "the target is not in maintenance"}, 404)
        monitor.end_maintenance(target, "maintenance ended early through the API")
        changed()
        wake(target)  # judged on fresh results, now
        log.warning("target %s: maintenance ended early; judged afresh", target)
        return _answer({"status": "ok", "ended": window.as_dict()})

    return [
        Route("/api/v1/maintenance", listing, methods=["GET"]),
        Route("/api/v1/maintenance", start, methods=["POST"]),
        Route("/api/v1/maintenance/{target}", end, methods=["DELETE"]),
    ]
