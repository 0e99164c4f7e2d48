"""GET /health: cheap liveness. 200 is healthy; 503 means up but still loading.

It can lie (vLLM keeps answering 200 while its engine is hung), which is why the chat probe
exists; this one tells "loading" and "unreachable" apart.
"""

from __future__ import annotations

from exporter.probes._base import Attempt, guarded, reason_for_status
from exporter.probes._http import (
    ProbeContext,
    open_stream,
    read_bounded,
    request_headers,
    timeouts,
)
from exporter.probes.errors import error_message
from exporter.results import Check, ProbeResult, Reason

__all__ = ["probe_health"]


async def probe_health(ctx: ProbeContext) -> ProbeResult:
    spec = ctx.target.checks.health

    async def body(attempt: Attempt) -> ProbeResult:
        async with open_stream(
            ctx.client,
            "GET",
            ctx.target.url + spec.path,
            headers=request_headers(ctx.target, auth=True),
            timeout=timeouts(ctx.timeout),
        ) as response:
            attempt.status_code = response.status_code
            attempt.mark("response_headers")
            payload = await read_bounded(response, min(ctx.target.max_body_bytes, 64 << 10))
        if response.status_code == 200:
            return attempt.ok()
        message = error_message(payload) or ""
        if response.status_code == 503:
            return attempt.fail(Reason.LOADING, f"HTTP 503 {message}".strip())
        return attempt.fail(
            reason_for_status(response.status_code),
            f"HTTP {response.status_code} {message}".strip(),
        )

    return await guarded(Check.HEALTH, ctx, body)
