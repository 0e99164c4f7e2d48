"""One round of checks against one target, written once: for `llm-heartbeat probe`, for
`/probe`, and for the scheduler's `probe_now` (recovery verification).

The checks run concurrently under one deadline (chat waits only for the model name when it
must learn it from /v1/models); the verdict comes as soon as it is known: /health refused or
loading decides at once, whatever a hung chat completion would have said 90 s later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from exporter.config import TargetConfig
from exporter.probes import PROBES, ProbeContext
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.probes.transport import Transport

__all__ = ["Round", "Runner", "Verdict", "direct_runner", "run_round", "verdict_of"]

# run one check: (check, model to ask for, seconds left) -> result (None: not run after all)
Runner = Callable[[Check, str | None, float], Awaitable[ProbeResult | None]]


class Verdict(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    STARTING = "starting"
    BUSY = "busy"  # rate limited (429, Ollama's "server busy"), nothing broken


@dataclass
class Round:
    """What one round found: the results in check order, the checks it did not need to wait
    for once the verdict was known, and the model the chat check asked for."""

    verdict: Verdict
    results: list[ProbeResult]
    skipped: list[Check] = field(default_factory=list)
    model: str | None = None
    duration: float = 0.0


def verdict_of(checks: Iterable[Check], results: dict[Check, ProbeResult]) -> Verdict | None:
    """The verdict the results so far allow, or None while it depends on checks still out.
    /health says first: 503 is starting, a failure is unhealthy; once it passed (or is not
    checked) any failure is unhealthy; all passed is healthy. A check the server does not
    offer neither passes nor fails; a rate-limited one makes the verdict busy, not unhealthy."""
    wanted = list(checks)
    health = results.get(Check.HEALTH)
    if health is not None and health.loading:
        return Verdict.STARTING
    failed = [r for r in results.values() if not r.success and r.offered]
    broken = any(r.reason is not Reason.RATE_LIMITED for r in failed)
    if broken and (Check.HEALTH not in wanted or health is not None):
        return Verdict.UNHEALTHY
    if all(c in results for c in wanted):
        if broken:
            return Verdict.UNHEALTHY
        return Verdict.BUSY if failed else Verdict.HEALTHY
    return None


def direct_runner(client: Transport, target: TargetConfig) -> Runner:
    """Probe with `client`, each check within min(its own timeout, what the round has left)."""

    async def run(check: Check, model: str | None, left: float) -> ProbeResult:
        spec = getattr(target.checks, check.value)
        return await PROBES[check](ProbeContext(client, target, min(spec.timeout, left), model))

    return run


async def run_round(
    checks: Iterable[Check],
    run: Runner,
    deadline: float,
    *,
    model: str | None = None,
    stop_early: bool = True,
    note: Callable[[str], None] = lambda _msg: None,
) -> Round:
    """Every check once, concurrently, within `deadline` seconds. With `stop_early` the round
    ends as soon as the verdict is known and the checks still out are listed as skipped."""
    wanted = list(checks)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    end = t0 + deadline
    results: dict[Check, ProbeResult] = {}
    chosen = [model]
    model_known = asyncio.Event()
    if model is not None or Check.MODELS not in wanted:
        model_known.set()

    async def one(check: Check) -> None:
        try:
            if check is Check.CHAT:
                await model_known.wait()
            left = round(end - loop.time(), 3)  # whole milliseconds: readable details
            result = _out_of_time(check) if left < 0.001 else await run(check, chosen[0], left)
        finally:
            if check is Check.MODELS:
                model_known.set()
        if result is None:
            return
        if check is Check.MODELS and chosen[0] is None and result.models:
            chosen[0] = result.models[0]
        results[check] = result
        note(describe(result))

    pending = {asyncio.create_task(one(c), name=f"round:{c.value}") for c in wanted}
    verdict = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a bug in a runner surfaces here
            verdict = verdict_of(wanted, results)
            if stop_early and verdict is not None:
                break
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    ordered = [results[c] for c in wanted if c in results]
    return Round(
        verdict=verdict or verdict_of(wanted, results) or Verdict.UNHEALTHY,
        results=ordered,
        skipped=[c for c in wanted if c not in results],
        model=chosen[0],
        duration=loop.time() - t0,
    )


def describe(result: ProbeResult) -> str:
    """One line for a round's log."""
    word = "ok" if result.success else f"FAIL {result.reason.value if result.reason else ''}"
    return (
        f"check={result.check.value} result={word.strip()} http={result.status_code or '-'} "
        f"duration={result.duration:.3f}s"
        + (f" ttft={result.ttft:.3f}s" if result.ttft is not None else "")
        + (f" detail={result.detail!r}" if result.detail else "")
    )


def _out_of_time(check: Check) -> ProbeResult:
    return ProbeResult(
        check=check,
        success=False,
        duration=0.0,
        timestamp=time.time(),
        reason=Reason.TIMEOUT,
        detail="not run: the round's deadline was used up before it could start",
    )
