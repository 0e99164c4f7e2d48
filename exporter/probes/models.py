"""GET /v1/models: the server must serve the model we expect (a healthy server can serve the
wrong one)."""

from __future__ import annotations

import json

from exporter.probes._base import Attempt, get_body, guarded, http_failure
from exporter.probes._http import ProbeContext
from exporter.probes.results import Check, ProbeResult, Reason

__all__ = ["parse_model_ids", "probe_models"]


def parse_model_ids(payload: bytes) -> tuple[str, ...] | None:
    """Model ids from an OpenAI list body ({"object": "list", "data": [{"id": ...}]}), or None."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        return None
    ids = [m.get("id") for m in obj["data"] if isinstance(m, dict)]
    if not all(isinstance(i, str) for i in ids):
        return None
    return tuple(ids)  # type: ignore[arg-type]


async def probe_models(ctx: ProbeContext) -> ProbeResult:
    spec = ctx.target.checks.models

    async def body(attempt: Attempt) -> ProbeResult:
        payload = await get_body(ctx, attempt, spec.path, ctx.target.max_body_bytes)
        if attempt.status_code != 200:
            return http_failure(attempt, payload)
        ids = parse_model_ids(payload)
        if ids is None:
            return attempt.fail(Reason.INVALID_RESPONSE, "not an OpenAI model list")
        if ctx.model is not None and ctx.model not in ids:
            shown = ", ".join(ids[:5]) or "none"
            return attempt.fail(
                Reason.MODEL_MISSING, f"{ctx.model!r} not served (serving: {shown})", models=ids
            )
        missing = [name for name in spec.require if name not in ids]
        if missing:
            shown = ", ".join(ids[:5]) or "none"
            return attempt.fail(
                Reason.MODEL_MISSING,
                f"{', '.join(repr(m) for m in missing[:5])} not served (serving: {shown})",
                models=ids,
            )
        if not ids:
            return attempt.fail(Reason.MODEL_MISSING, "the server lists no model", models=ids)
        return attempt.ok(models=ids)

    return await guarded(Check.MODELS, ctx, body)
