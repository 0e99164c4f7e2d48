"""The frame every probe runs in: one hard deadline, timing, and failures as values."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
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
from exporter.probes.redact import redact, secrets_of
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.probes.route import route_for
from exporter.probes.transport import ProbeResponse
from exporter.util.faults import FaultKind
from exporter.util.net import redact_url
from exporter.util.text import clean_text

__all__ = [
    "Attempt",
    "answered",
    "get_body",
    "guarded",
    "http_failure",
    "note_retry_after",
    "parse_retry_after",
    "reason_for_status",
]

# Ollama's 503 when its queue is full (server/sched.go ErrMaxQueue, v0.33.0-rc2): busy
_SERVER_BUSY = "server busy"
# a Retry-After beyond a day is nonsense (or hostile): read as a day, never as forever
_RETRY_AFTER_MAX = 86400.0

log = logging.getLogger(__name__)
_told: set[tuple[Check, str]] = set()  # bugs whose traceback was logged once already
# what the wire and the deadline raise: the target's doing (or its network's), not ours
_FROM_THE_WIRE = (InputError, TimeoutError, OSError, UnicodeDecodeError)


class Attempt:
    """Collects what a probe learns as it goes, so a failure half-way still reports it."""

    def __init__(self, check: Check, secrets: Callable[[], tuple[str, ...]] | None = None) -> None:
        """`secrets`: the target's own secret values, asked for only when a result keeps some
        of the target's words (probes/redact.py)."""
        self.check = check
        self._secrets = secrets
        self.timestamp = time.time()
        self.t0 = time.perf_counter()
        self.status_code: int | None = None
        self.location: str | None = None  # a redirect's target (shown, never followed)
        self.retry_after: float | None = None
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
        # the target's words enter here, once, cleaned (exporter/text.py says why) and without
        # the target's own secrets in them, whatever it echoed (probes/redact.py)
        hide = self._hide
        if extra.get("models"):
            extra["models"] = tuple(clean_text(hide(m), 200) for m in extra["models"][:100])
        for key in ("content", "finish_reason"):
            if isinstance(extra.get(key), str):
                extra[key] = clean_text(hide(extra[key]), 500)
        phases, self.phases = self.phases, {}  # a second result would not share the first's
        return ProbeResult(
            check=self.check,
            success=success,
            duration=self.elapsed(),
            timestamp=self.timestamp,
            status_code=self.status_code,
            reason=reason,
            detail=clean_text(hide(detail), 300) if detail else "",
            phases=phases,  # handed over, not copied: one dict per kept result
            **extra,
        )

    def _hide(self, text: str) -> str:
        if not text or self._secrets is None:
            return text
        return redact(text, self._secrets())


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
    target = ctx.target
    attempt = Attempt(check, lambda: secrets_of(target))
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
    if status == 429:
        return Reason.RATE_LIMITED
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
        route=route_for(ctx.target),
    ) as response:
        answered(attempt, response)
        return await read_bounded(response, limit)


def answered(attempt: Attempt, response: ProbeResponse) -> None:
    """The status (a redirect's Location, a rate limit's Retry-After) land on `attempt`, the
    time is marked."""
    attempt.status_code = status = response.status_code
    if 300 <= status < 400:
        attempt.location = response.headers.get("location")
    attempt.mark("response_headers")
    note_retry_after(attempt, response.headers)


def note_retry_after(attempt: Attempt, headers: Mapping[str, str]) -> None:
    """Keep a rate limit's Retry-After on the attempt (429 and 503 only, where it means it)."""
    if attempt.status_code in (429, 503):
        attempt.retry_after = parse_retry_after(headers.get("retry-after"), time.time())


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After (RFC 9110 10.2.3) in seconds from now: delay-seconds or an HTTP-date;
    None when absent or unreadable, a date in the past is 0, at most a day."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX)


def http_failure(attempt: Attempt, payload: bytes) -> ProbeResult:
    """A non-2xx answer as a failed result, with the server's own error message if any, and
    where a redirect points (a probe does not follow it: the configured URL is what is
    monitored; its credentials are not shown). 429, and Ollama's 503 "server busy", are a
    rate limit: busy, not broken."""
    status = attempt.status_code or 0
    message = error_message(payload) or ""
    reason = reason_for_status(status)
    if status == 503 and _SERVER_BUSY in message.lower():
        reason = Reason.RATE_LIMITED
    if attempt.location:
        message = f"redirected to {redact_url(attempt.location.strip()[:200])} {message}"
    if reason is Reason.RATE_LIMITED:
        return attempt.fail(
            reason, f"HTTP {status} {message}".strip(), retry_after=attempt.retry_after
        )
    return attempt.fail(reason, f"HTTP {status} {message}".strip())
