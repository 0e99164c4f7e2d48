"""GET /v1/models: the server must serve the model we expect (a healthy server can serve the
wrong one). Its `owned_by` also tells vLLM, SGLang and llama-server apart (probes/servers.py)."""

from __future__ import annotations

import json

from exporter.probes._base import Attempt, get_body, guarded, http_failure
from exporter.probes._http import ProbeContext
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.probes.servers import from_owned_by

__all__ = ["parse_model_list", "probe_models"]


def parse_model_list(payload: bytes) -> tuple[tuple[str, ...], list[str]] | None:
    """Model ids and their `owned_by` strings from an OpenAI list body ({"object": "list",
    "data": [{"id": ..., "owned_by": ...}]}), or None when it is not one."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        return None
    entries = [m for m in obj["data"] if isinstance(m, dict)]
    ids = [m.get("id") for m in entries]
    if not all(isinstance(i, str) for i in ids):
        return None
    owners = [o for m in entries[:100] if isinstance(o := m.get("owned_by"), str)]
    return tuple(ids), owners  # type: ignore[arg-type]


async def probe_models(ctx: ProbeContext) -> ProbeResult:
    spec = ctx.target.checks.models

    async def body(attempt: Attempt) -> ProbeResult:
        payload = await get_body(ctx, attempt, spec.path, ctx.target.max_body_bytes)
        if attempt.status_code != 200:
            return http_failure(attempt, payload)
        parsed = parse_model_list(payload)
        if parsed is None:
            return attempt.fail(Reason.INVALID_RESPONSE, "not an OpenAI model list")
        ids, owners = parsed
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
        return attempt.ok(models=ids, server=from_owned_by(owners))

    return await guarded(Check.MODELS, ctx, body)
