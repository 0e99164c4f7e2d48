"""When each check runs next, and how many probes confirm a failure: pure functions of the
state machine's status (the scheduler applies them)."""

from __future__ import annotations

from exporter.engine.state import Policy, State, TargetStatus
from exporter.engine.thrift import pressed
from exporter.probes.results import Check, Reason
from exporter.probes.servers import NOT_OFFERED_RECHECK

__all__ = ["NO_METRICS_RECHECK", "confirmations", "next_delay"]

NO_METRICS_RECHECK = 60.0
"""A server that offers no engine view (a 404, llama-server's 501 without --metrics, vLLM's
--disable-log-stats) is asked again once a minute, not every engine interval: it may be
restarted with metrics on."""


def next_delay(status: TargetStatus, check: Check, interval: float, policy: Policy) -> float:
    """When to probe `check` again: at once when a check has just recovered and this check's
    result predates it, fast while a failure is being confirmed, then a calmer cadence while
    the target is unwell, the normal interval when all is well. A check the server does not
    offer is asked again every 10 minutes; a rate-limited one after its Retry-After (at least
    the retry interval, at most its own interval: a huge one cannot blind the monitor)."""
    latest = status.latest.get(check)
    if latest is not None and not latest.offered:
        return max(interval, NOT_OFFERED_RECHECK)
    if latest is not None and latest.reason is Reason.RATE_LIMITED:
        wait = latest.retry_after if latest.retry_after is not None else interval
        return min(interval, max(wait, policy.retry_interval))
    if check not in policy.judged:  # the engine view: its own cadence, no confirmation
        latest = status.latest.get(check)
        if latest is not None and latest.success and latest.engine is None:
            return max(interval, NO_METRICS_RECHECK)
        return interval
    if check in status.awaiting(policy):
        return 0.0
    result = status.latest.get(check)
    if result is None or result.success:
        if (
            status.state in (State.DOWN, State.DEGRADED, State.STARTING)
            and check is not policy.primary
        ):
            # the server may be back: let the other checks catch up soon
            return min(interval, 5 * policy.retry_interval)
        return interval
    if status.consecutive_failures(check) < policy.failures_to_down:
        # a timeout has waited its deadline already: its confirming probes start at once
        return 0.0 if result.reason is Reason.TIMEOUT else policy.retry_interval
    return min(interval, 5 * policy.retry_interval)


def confirmations(
    status: TargetStatus, check: Check, policy: Policy, now: float | None = None
) -> int:
    """How many probes of `check` to run at once next. A timeout being confirmed gets all the
    missing ones together: N independent probes still have to fail (noise stays noise), but
    the wait is one more timeout, not N-1 more. Never on a saturated engine that is still
    advancing (at Unix time `now`): more requests in its queue would only make it slower; one
    at a time there. One whose counters froze may be stalling: confirmed at full speed."""
    result = status.latest.get(check)
    failures = status.consecutive_failures(check)
    view, ep = status.engine, policy.engine
    if (
        (now is not None and view is not None and ep is not None and pressed(view, now, ep))
        or check not in policy.judged
        or result is None
        or result.success
        or result.reason is not Reason.TIMEOUT
        or not 0 < failures < policy.failures_to_down
    ):
        return 1
    return policy.failures_to_down - failures
