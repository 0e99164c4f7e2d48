"""GET the server's own /metrics: how many requests run and wait, how full the KV cache is, and
whether generation advances. One bounded read (size cap, one total deadline), then a strict
parse of the few names we use (exporter/probes/engine_metrics.py).

A 404 means the server has no metrics page (Ollama; llama-server without --metrics): no engine
view, which the state machine treats as "nothing known", never as a fault of the target.
"""

from __future__ import annotations

from exporter.probes._base import Attempt, get_body, guarded, http_failure
from exporter.probes._http import ProbeContext
from exporter.probes.engine_metrics import EngineParseError, names_for, parse_engine
from exporter.probes.results import Check, ProbeResult, Reason

__all__ = ["probe_engine"]


async def probe_engine(ctx: ProbeContext) -> ProbeResult:
    spec = ctx.target.checks.engine
    candidates = names_for(spec.flavour, spec.names)

    async def body(attempt: Attempt) -> ProbeResult:
        payload = await get_body(ctx, attempt, spec.path, spec.max_bytes)
        if attempt.status_code == 404:
            return attempt.fail(
                Reason.HTTP_STATUS,
                f"HTTP 404 on {spec.path}: the server exports no metrics, so there is no "
                "engine view (not a fault of the target)",
            )
        if attempt.status_code != 200:
            return http_failure(attempt, payload)
        try:
            sample = parse_engine(payload, candidates)
        except EngineParseError as exc:
            return attempt.fail(Reason.INVALID_RESPONSE, str(exc))
        return attempt.ok(engine=sample)

    return await guarded(Check.ENGINE, ctx, body)
