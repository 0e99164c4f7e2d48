"""HTTP endpoints of the recovery receiver: parse, authenticate, answer fast.

Bad input is always a 4xx with a plain message; a 5xx only means "not accepted, retry" (the
receiver is not started yet). The body is read with a size cap while it streams.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from exporter.errors import BodyTooLarge, validation_messages
from exporter.recovery.intake import anomalies
from exporter.recovery.outcomes import WebhookOutcome
from exporter.recovery.payload import WebhookMessage
from exporter.recovery.service import RecoveryService
from exporter.util.http import read_capped
from exporter.util.secrets import bearer_ok
from exporter.util.text import safe_json


class _JSON(JSONResponse):
    """JSON that cannot fail on what an alert carried (exporter/text.py)."""

    def render(self, content: Any) -> bytes:
        return safe_json(content)


__all__ = ["build_routes"]

log = logging.getLogger("exporter.recovery")


def _error(status: int, message: str, **headers: str) -> _JSON:
    return _JSON({"error": message}, status_code=status, headers=headers or None)


def _validation_message(exc: ValidationError) -> str:
    """loc + msg of the first few errors; never the input (it may be large or odd)."""
    parts = [f"{where or 'body'}: {msg}" for where, msg in validation_messages(exc, limit=3)]
    return ("invalid Alertmanager webhook payload: " + "; ".join(parts))[:500]


def build_routes(svc: RecoveryService) -> list[Route]:
    def authorized(request: Request) -> bool:
        return svc.token is None or bearer_ok(request.headers.get("authorization"), svc.token)

    def unauthorized() -> _JSON:
        return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})

    async def alertmanager_hook(request: Request) -> _JSON:
        stats = svc.stats
        if not svc.config.enabled:
            # The shipped Alertmanager config routes critical alerts here whether or not
            # recovery is on; an error would make Alertmanager log "Notify for alerts failed"
            # and retry on every alert. Received, counted, deliberately not acted on.
            stats.count_webhook(WebhookOutcome.DISABLED)
            return _JSON({"status": "ignored", "reason": "recovery.enabled is false"})
        if not authorized(request):
            stats.count_webhook(WebhookOutcome.UNAUTHORIZED)
            return unauthorized()
        if not svc.started:
            return _error(503, "recovery receiver is starting; retry")
        try:
            async with asyncio.timeout(svc.config.body_timeout):  # a trickled body is cut off
                body = await read_capped(
                    request.stream(),
                    svc.config.max_body_bytes,
                    request.headers.get("content-length"),
                )
        except TimeoutError:
            stats.count_webhook(WebhookOutcome.INVALID)
            log.warning("webhook body not complete within %gs; closed", svc.config.body_timeout)
            return _error(
                408,
                f"body not complete within {svc.config.body_timeout:g}s",
                Connection="close",
            )
        except BodyTooLarge:
            stats.count_webhook(WebhookOutcome.TOO_LARGE)
            return _error(413, f"body larger than {svc.config.max_body_bytes} bytes")
        except ClientDisconnect:
            stats.count_webhook(WebhookOutcome.INVALID)
            return _error(400, "client disconnected before the body was complete")
        try:
            message = WebhookMessage.model_validate_json(body)
        except ValidationError as exc:
            stats.count_webhook(WebhookOutcome.INVALID)
            return _error(400, _validation_message(exc))
        except (ValueError, RecursionError):
            stats.count_webhook(WebhookOutcome.INVALID)
            return _error(400, "invalid Alertmanager webhook payload")
        intake = svc.accept(message)
        summary = intake.summary
        only_repeats = summary["duplicate"] and not summary["accepted"]
        outcome = WebhookOutcome.DUPLICATE if only_repeats else WebhookOutcome.ACCEPTED
        stats.count_webhook(outcome)
        caveats = anomalies(message)
        for kind, _ in caveats:
            stats.count_anomaly(kind)
        # one line per delivery, whatever the number of alerts (each job logs its own steps)
        log.log(
            logging.WARNING if caveats else logging.INFO,
            "webhook %s: %d alert(s): %d accepted, %d duplicate, %d resolved, %d unmatched%s%s",
            outcome,
            len(message.alerts),
            summary["accepted"],
            summary["duplicate"],
            summary["resolved"],
            summary["unmatched"],
            intake.describe(),
            "".join(f"; {text}" for _, text in caveats),
        )
        answer: dict[str, Any] = {"status": "ok", **summary}
        if caveats:
            answer["warnings"] = [text for _, text in caveats]
        return _JSON(answer)

    async def reset(request: Request) -> _JSON:
        if not authorized(request):
            return unauthorized()
        target = request.path_params["target"]
        if not svc.targets.has_target(target):
            return _error(404, "no such target")
        svc.reset(target, by="operator")
        return _JSON({"target": target, "reset": True})

    async def status(request: Request) -> _JSON:
        if not authorized(request):
            return unauthorized()
        return _JSON(svc.status())

    return [
        Route("/hooks/alertmanager", alertmanager_hook, methods=["POST"]),
        Route("/api/v1/recovery/{target}/reset", reset, methods=["POST"]),
        Route("/api/v1/recovery", status, methods=["GET"]),
    ]
