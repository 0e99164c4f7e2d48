"""GET the server's own /metrics: how many requests run and wait, how full the KV cache is, and
whether generation advances. One streamed read (size cap, one total deadline) filtered as it
arrives, then a strict parse of the few names the server's module uses (probes/engines/).

"No engine view" is a passing result without a sample, never a failure: a 404 (Ollama, SGLang
without --enable-metrics), llama-server's 501 `not_supported_error` (no --metrics), a metrics
page without any of the server's series (vLLM's --disable-log-stats). The scheduler asks such
a server again once a minute. SGLang's `/v1/loads` stands in when its /metrics is off.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from exporter.errors import EngineParseError
from exporter.probes._base import Attempt, guarded, http_failure
from exporter.probes._http import (
    ProbeContext,
    iter_bounded,
    read_bounded,
    request_headers,
    timeouts,
)
from exporter.probes.engine_metrics import LineFilter, parse_found, pick_sample
from exporter.probes.engines import Engine, engines_for
from exporter.probes.results import Check, EngineSample, ProbeResult, Reason

__all__ = ["NO_VIEW", "probe_engine"]

NO_VIEW = "no engine view"
ERROR_BODY = 64 << 10
PARSE_INLINE = 200
"""Kept lines parsed on the loop; more are parsed in a thread (the loop stays responsive)."""


async def probe_engine(ctx: ProbeContext) -> ProbeResult:
    spec = ctx.target.checks.engine
    engines = engines_for(spec.flavour, spec.names)

    async def body(attempt: Attempt) -> ProbeResult:
        result = await _read(ctx, attempt, spec.path, engines, spec.max_bytes)
        if result.engine is not None or not result.success:
            return result
        for engine in engines:  # no view: the server's other source, if it has one
            fallback = engine.fallback()
            if fallback is not None and engine.fallback_path:
                second = await _read(ctx, attempt, engine.fallback_path, [fallback], spec.max_bytes)
                return second if second.engine is not None else result
        return result

    return await guarded(Check.ENGINE, ctx, body)


async def _read(
    ctx: ProbeContext, attempt: Attempt, path: str, engines: list[Engine], limit: int
) -> ProbeResult:
    names = tuple(dict.fromkeys(n for e in engines for n in e.names.all()))
    lines = LineFilter(names)
    async with ctx.client.stream(
        "GET",
        ctx.target.url + path,
        headers=request_headers(ctx.target, auth=True),
        timeout=timeouts(ctx.timeout),
    ) as response:
        attempt.status_code = status = response.status_code
        attempt.mark("response_headers")
        if status != 200:
            payload = await read_bounded(response, ERROR_BODY)
            for engine in engines:
                why = engine.no_view(status, payload)
                if why is not None:
                    return attempt.ok(f"{NO_VIEW} on {path}: {why} (not a fault of the target)")
            return http_failure(attempt, payload)
        try:
            async for chunk in iter_bounded(response, limit):
                lines.feed(chunk)
        except EngineParseError as exc:
            return attempt.fail(Reason.INVALID_RESPONSE, str(exc))
    try:
        kept = lines.finish()
        if len(kept) > PARSE_INLINE:
            found = await asyncio.to_thread(parse_found, kept, names)
        else:
            found = parse_found(kept, names)
        if not found and lines.prometheus:
            if len(engines) == 1 and engines[0].absent_is_idle:
                idle = EngineSample(engines[0].names.flavour, running=0.0, waiting=0.0)
                return attempt.ok(engine=idle)
            flavours = "/".join(e.names.flavour for e in engines)
            hints = " ".join(e.quiet_hint for e in engines if e.quiet_hint)
            return attempt.ok(
                f"{NO_VIEW} on {path}: a metrics page without {flavours} series {hints}".strip()
            )
        sample = pick_sample(found, engines)
    except EngineParseError as exc:
        return attempt.fail(Reason.INVALID_RESPONSE, str(exc))
    if path != ctx.target.checks.engine.path:
        sample = replace(sample, source=path.split("?")[0])
    return attempt.ok(engine=sample)
