"""GET /health: cheap liveness. 200 is healthy; 503 means up but still loading.

It can lie (vLLM keeps answering 200 while its engine is hung), which is why the chat probe
exists; this one tells "loading" and "unreachable" apart.
"""

from __future__ import annotations

from exporter.probes._base import Attempt, get_body, guarded, http_failure
from exporter.probes._http import ProbeContext
from exporter.probes.errors import error_message
from exporter.probes.results import Check, ProbeResult, Reason

__all__ = ["probe_health"]


async def probe_health(ctx: ProbeContext) -> ProbeResult:
    spec = ctx.target.checks.health

    async def body(attempt: Attempt) -> ProbeResult:
        payload = await get_body(ctx, attempt, spec.path, min(ctx.target.max_body_bytes, 64 << 10))
        if attempt.status_code == 200:
            return attempt.ok()
        if attempt.status_code == 503:
            message = error_message(payload) or ""
            return attempt.fail(Reason.LOADING, f"HTTP 503 {message}".strip())
        return http_failure(attempt, payload)

    return await guarded(Check.HEALTH, ctx, body)
