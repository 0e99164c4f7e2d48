"""The per-target state machine: pure functions over values, no I/O, no clock of its own.

States: unknown -> (starting | up | degraded | down). The rules, in order (engine/rules.py):
- `starting` while /health answers 503 (loading weights) or during a grace period after a
  recovery action: a loading server is not called down. 503 for longer than the start-up
  grace becomes `down` (vLLM also answers 503 when its engine is dead).
- `down` once the primary check (health, else models, else chat) has failed N times in a
  row and no other check has succeeded since: the server cannot be reached or answers
  nothing useful.
- hold: a check has just recovered (the primary in any state, any check when not `up`) and
  another check has not run since; its result is stale, so no state is decided on it (the
  scheduler re-runs it at once).
- `up` when every enabled check's latest (fresh) result passed, M evaluations in a row.
- `degraded` when the primary check passes but another (chat, models) has failed N times in
  a row since the primary last recovered: /health claims all is well while inference is dead.

The way back is direct: when a check recovers, the other checks' failure streaks are recounted
from that moment, and a failure of a probe that started before it is not counted (it describes
the outage, not the server now).
"""

from __future__ import annotations

from dataclasses import replace

from exporter.engine.rules import Facts, decide
from exporter.engine.status import Policy, State, TargetStatus, Transition
from exporter.probes.results import Check, ProbeResult

__all__ = [
    "Policy",
    "State",
    "TargetStatus",
    "Transition",
    "begin_grace",
    "is_stale",
    "observe",
]


def begin_grace(
    status: TargetStatus, target: str, now: float, seconds: float, reason: str
) -> tuple[TargetStatus, Transition | None]:
    """A recovery action ran: the server may take minutes to load; call it starting, not down."""
    new = replace(
        status,
        grace_until=now + seconds,
        ok_streak=0,
        failures={},
        failing_since={},
        recovered_at=now,  # what the checks saw before the action is stale
        fresh=frozenset(),
    )
    return _move(new, target, now, State.STARTING, "recovery_grace", reason)


def end_grace(status: TargetStatus) -> TargetStatus:
    return replace(status, grace_until=None)


def is_stale(status: TargetStatus, result: ProbeResult, policy: Policy) -> bool:
    """A failure of a probe that began before a check last recovered: it saw the outage."""
    return (
        not result.success
        and status.recovered_at is not None
        and result.timestamp < status.recovered_at
    )


def observe(
    status: TargetStatus, target: str, result: ProbeResult, now: float, policy: Policy
) -> tuple[TargetStatus, Transition | None]:
    """Fold one probe result into the status; return the new status and the transition, if any."""
    if is_stale(status, result, policy):
        return status, None
    check = result.check
    latest = dict(status.latest)
    failures = dict(status.failures)
    failing_since = dict(status.failing_since)
    recovered_at, fresh = status.recovered_at, status.fresh | {check}
    previous = latest.get(check)
    if _recovers(status, result, previous, policy):
        # back: what the other checks saw so far describes the outage, not the server now
        recovered_at, fresh = result.timestamp, frozenset({check})
        for c in policy.checks:
            if c is check:
                continue
            failures.pop(c, None)
            failing_since.pop(c, None)
    latest[check] = result
    failures[check] = 0 if result.success else failures.get(check, 0) + 1
    if result.success:
        failing_since.pop(check, None)
    else:
        failing_since.setdefault(check, result.timestamp)
    health = latest.get(Check.HEALTH)
    loading = health is not None and health.loading and Check.HEALTH in policy.checks
    grace = status.grace_until is not None and now < status.grace_until
    new = replace(
        status,
        latest=latest,
        failures=failures,
        failing_since=failing_since,
        recovered_at=recovered_at,
        fresh=fresh,
        loading_since=(status.loading_since or now) if loading else None,
        grace_until=status.grace_until if grace else None,
    )
    all_ok = not new.awaiting(policy) and all(
        c in latest and latest[c].success for c in policy.checks
    )
    new = replace(new, ok_streak=status.ok_streak + 1 if all_ok else 0)
    target_state, reason, detail = decide(Facts(new, policy, now, grace))
    if target_state is None:
        return new, None
    if target_state is State.UP:
        new = replace(new, grace_until=None)  # back: the grace period has done its job
    return _move(new, target, now, target_state, reason, detail)


def _recovers(
    status: TargetStatus, result: ProbeResult, previous: ProbeResult | None, policy: Policy
) -> bool:
    """A check passes after failing (the primary in any state, any check when not up) and no
    recovery is being checked already (a further check passing just joins that one)."""
    if not result.success or previous is None or previous.success or status.awaiting(policy):
        return False
    return result.check is policy.primary or status.state is not State.UP


def _move(
    s: TargetStatus, target: str, now: float, to: State, reason: str, detail: str
) -> tuple[TargetStatus, Transition | None]:
    if to is s.state:
        return s, None
    transition = Transition(now, target, s.state, to, reason, detail)
    return replace(s, state=to, since=now, reason=reason, detail=detail), transition
