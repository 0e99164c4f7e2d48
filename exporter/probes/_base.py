"""The frame every probe runs in: one hard deadline, timing, and failures as values."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

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
from exporter.util.net import redact_url
from exporter.util.text import clean_text

__all__ = ["Attempt", "answered", "get_body", "guarded", "http_failure", "reason_for_status"]


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
    """Run `body` under the probe's total deadline; any exception becomes a failed result."""
    target = ctx.target
    attempt = Attempt(check, lambda: secrets_of(target))
    try:
        async with asyncio.timeout(ctx.timeout):
            return await body(attempt)
    except Exception as exc:
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
        route=route_for(ctx.target),
    ) as response:
        answered(attempt, response)
        return await read_bounded(response, limit)


def answered(attempt: Attempt, response: ProbeResponse) -> None:
    """The status (and a redirect's Location) land on `attempt`, the time is marked."""
    attempt.status_code = status = response.status_code
    if 300 <= status < 400:
        attempt.location = response.headers.get("location")
    attempt.mark("response_headers")


def http_failure(attempt: Attempt, payload: bytes) -> ProbeResult:
    """A non-2xx answer as a failed result, with the server's own error message if any, and
    where a redirect points (a probe does not follow it: the configured URL is what is
    monitored; its credentials are not shown)."""
    status = attempt.status_code or 0
    message = error_message(payload) or ""
    if attempt.location:
        message = f"redirected to {redact_url(attempt.location.strip()[:200])} {message}"
    return attempt.fail(reason_for_status(status), f"HTTP {status} {message}".strip())
