"""The frame every probe runs in: one hard deadline, timing, and failures as values."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from exporter.errors import ExporterFault, InputError
from exporter.probes._http import (
    ProbeContext,
    map_exception,
    read_bounded,
    request_headers,
    timeouts,
)
from exporter.probes.errors import error_message
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.util.faults import FaultKind
from exporter.util.text import clean_text

__all__ = ["Attempt", "get_body", "guarded", "http_failure", "reason_for_status"]

log = logging.getLogger(__name__)
_told: set[tuple[Check, str]] = set()  # bugs whose traceback was logged once already
# what the wire and the deadline raise: the target's doing (or its network's), not ours
_FROM_THE_WIRE = (InputError, TimeoutError, OSError, UnicodeDecodeError)


class Attempt:
    """Collects what a probe learns as it goes, so a failure half-way still reports it."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.timestamp = time.time()
        self.t0 = time.perf_counter()
        self.status_code: int | None = None
        self.phases: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def mark(self, phase: str) -> float:
        """Record the time since the start under `phase` and return it."""
        value = self.elapsed()
        self.phases[phase] = value
        return value

    def ok(self, detail: str = "", **extra: Any) -> ProbeResult:
        return self._result(True, None, detail, extra)

    def fail(self, reason: Reason, detail: str, **extra: Any) -> ProbeResult:
        return self._result(False, reason, detail, extra)

    def own_fault(self, kind: str, detail: str) -> ProbeResult:
        """Our side failed before the target answered: a result that judges nothing."""
        return self._result(False, None, detail, {"fault": kind})

    def _result(
        self, success: bool, reason: Reason | None, detail: str, extra: dict[str, Any]
    ) -> ProbeResult:
        # the target's words enter here, once, cleaned (exporter/text.py says why)
        if extra.get("models"):
            extra["models"] = tuple(clean_text(m, 200) for m in extra["models"][:100])
        for key in ("content", "finish_reason"):
            if isinstance(extra.get(key), str):
                extra[key] = clean_text(extra[key], 500)
        phases, self.phases = self.phases, {}  # a second result would not share the first's
        return ProbeResult(
            check=self.check,
            success=success,
            duration=self.elapsed(),
            timestamp=self.timestamp,
            status_code=self.status_code,
            reason=reason,
            detail=clean_text(detail, 300),
            phases=phases,  # handed over, not copied: one dict per kept result
            **extra,
        )


async def guarded(
    check: Check,
    ctx: ProbeContext,
    body: Callable[[Attempt], Awaitable[ProbeResult]],
    *,
    streaming: bool = False,
) -> ProbeResult:
    """Run `body` under the probe's total deadline; any exception becomes a failed result,
    the target's when it comes from the wire or the deadline, ours (`fault`, judging
    nothing) when it is our own fault or a bug before the target answered."""
    attempt = Attempt(check)
    try:
        async with asyncio.timeout(ctx.timeout):
            return await body(attempt)
    except ExporterFault as exc:  # e.g. an API key file never read: nothing was sent
        return attempt.own_fault(exc.kind, str(exc))
    except Exception as exc:
        if attempt.status_code is None and not isinstance(exc, _FROM_THE_WIRE):
            if (check, type(exc).__name__) not in _told:
                _told.add((check, type(exc).__name__))
                log.error("the %s probe raised (the exporter's bug)", check.value, exc_info=exc)
            return attempt.own_fault(
                FaultKind.PROBE_BUG,
                f"{type(exc).__name__} in the exporter's {check.value} probe before the target "
                "answered: our bug, not the target's",
            )
        reason, detail = map_exception(exc, streaming=streaming and attempt.status_code == 200)
        if reason is Reason.TIMEOUT:
            detail = f"no complete answer within {ctx.timeout:g}s"
        return attempt.fail(reason, detail)


def reason_for_status(status: int) -> Reason:
    if status in (401, 403):
        return Reason.UNAUTHORIZED
    if status >= 500:
        return Reason.SERVER_ERROR
    return Reason.HTTP_STATUS


async def get_body(ctx: ProbeContext, attempt: Attempt, path: str, limit: int) -> bytes:
    """GET a path of the target and read at most `limit` bytes; the status lands on `attempt`."""
    async with ctx.client.stream(
        "GET",
        ctx.target.url + path,
        headers=request_headers(ctx.target, auth=True),
        timeout=timeouts(ctx.timeout),
    ) as response:
        attempt.status_code = response.status_code
        attempt.mark("response_headers")
        return await read_bounded(response, limit)


def http_failure(attempt: Attempt, payload: bytes) -> ProbeResult:
    """A non-2xx answer as a failed result, with the server's own error message if any."""
    status = attempt.status_code or 0
    message = error_message(payload) or ""
    return attempt.fail(reason_for_status(status), f"HTTP {status} {message}".strip())
