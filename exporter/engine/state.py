"""The per-target state machine: pure functions over values, no I/O, no clock of its own.

States: unknown -> (starting | up | overloaded | degraded | down). The rules, in order:
- `starting` while /health answers 503 (loading weights) or during a grace period after a
  recovery action: a loading server is not called down. 503 for longer than the start-up
  grace becomes `down` (vLLM also answers 503 when its engine is dead).
- `down` once the primary check (health, else models, else chat) has failed N times in a
  row and no other check has succeeded since: the server cannot be reached or answers
  nothing useful.
- `degraded` when the primary check passes but another (chat, models) has failed N times in
  a row: /health claims all is well while inference is dead.
- `degraded`, reason `engine_stalled`, when the server's own metrics show work pending and
  generation not advancing for `stall_after` (exporter/engine/progress.py), even while
  /health answers 200 and before the chat probe's deadline.
- `overloaded` (busy, not broken) when the chat probe is slow or fails by timeout, or /health
  misses its deadline, while the engine makes progress with its queue or KV cache saturated.
  It is never counted as down or degraded.
- `up` when every enabled check's latest result passed, M evaluations in a row.

The engine check itself never passes or fails a target: only these two conclusions count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from exporter.engine.progress import EnginePolicy, EngineView, fold_sample
from exporter.probes.results import VERDICT_CHECKS, Check, ProbeResult, Reason

__all__ = ["Policy", "State", "TargetStatus", "Transition", "begin_grace", "next_delay", "observe"]


class State(StrEnum):
    UNKNOWN = "unknown"
    STARTING = "starting"
    UP = "up"
    OVERLOADED = "overloaded"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds that drive the machine (from the target's config)."""

    checks: tuple[Check, ...]
    failures_to_down: int = 3
    successes_to_up: int = 1
    retry_interval: float = 1.0
    startup_grace: float = 600.0
    engine: EnginePolicy | None = None

    @property
    def judged(self) -> tuple[Check, ...]:
        """The checks whose results pass or fail the target (all but the engine check)."""
        return tuple(c for c in self.checks if c in VERDICT_CHECKS)

    @property
    def primary(self) -> Check:
        return self.judged[0]


@dataclass(frozen=True, slots=True)
class Transition:
    time: float
    target: str
    from_state: State
    to_state: State
    reason: str
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "target": self.target,
            "from": self.from_state.value,
            "to": self.to_state.value,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """Everything the machine remembers about one target."""

    state: State = State.UNKNOWN
    since: float = 0.0
    latest: Mapping[Check, ProbeResult] = field(default_factory=dict)
    failures: Mapping[Check, int] = field(default_factory=dict)
    failing_since: Mapping[Check, float] = field(default_factory=dict)
    ok_streak: int = 0
    grace_until: float | None = None
    loading_since: float | None = None
    engine: EngineView | None = None
    reason: str = ""
    detail: str = ""

    def consecutive_failures(self, check: Check) -> int:
        return self.failures.get(check, 0)


def begin_grace(
    status: TargetStatus, target: str, now: float, seconds: float, reason: str
) -> tuple[TargetStatus, Transition | None]:
    """A recovery action ran: the server may take minutes to load; call it starting, not down."""
    new = replace(status, grace_until=now + seconds, ok_streak=0, failures={}, failing_since={})
    return _move(new, target, now, State.STARTING, "recovery_grace", reason)


def end_grace(status: TargetStatus) -> TargetStatus:
    return replace(status, grace_until=None)


def observe(
    status: TargetStatus, target: str, result: ProbeResult, now: float, policy: Policy
) -> tuple[TargetStatus, Transition | None]:
    """Fold one probe result into the status; return the new status and the transition, if any."""
    latest = dict(status.latest)
    latest[result.check] = result
    failures = dict(status.failures)
    failures[result.check] = 0 if result.success else failures.get(result.check, 0) + 1
    failing_since = dict(status.failing_since)
    if result.success:
        failing_since.pop(result.check, None)
    else:
        failing_since.setdefault(result.check, result.timestamp)
    all_ok = all(c in latest and latest[c].success for c in policy.judged)
    ok_streak = status.ok_streak + 1 if all_ok else 0
    health = latest.get(Check.HEALTH)
    loading = health is not None and health.loading and Check.HEALTH in policy.checks
    loading_since = (status.loading_since or now) if loading else None
    grace = status.grace_until is not None and now < status.grace_until
    engine = status.engine
    if result.engine is not None:
        engine = fold_sample(engine, result.engine, result.timestamp)
        if _saturation_ended(status.engine, engine, policy.engine):
            _forget_busy_failures(latest, failures, failing_since, result.timestamp)
    new = replace(
        status,
        latest=latest,
        failures=failures,
        failing_since=failing_since,
        ok_streak=ok_streak,
        loading_since=loading_since,
        grace_until=status.grace_until if grace else None,
        engine=engine,
    )
    target_state, reason, detail = _decide(new, policy, now, grace)
    if target_state is None:
        return new, None
    if target_state is State.UP:
        new = replace(new, grace_until=None)  # back: the grace period has done its job
    return _move(new, target, now, target_state, reason, detail)


def _decide(
    s: TargetStatus, policy: Policy, now: float, grace: bool
) -> tuple[State | None, str, str]:
    n = policy.failures_to_down
    ep, view = policy.engine, s.engine
    if ep is None or view is None or not view.fresh(now, ep):
        ep, view = None, None
    if view is not None and ep is not None and s.loading_since is None and view.stalled(now, ep):
        if grace:
            return State.STARTING, "recovery_grace", f"engine: {view.describe()}"
        return State.DEGRADED, "engine_stalled", f"engine: {view.describe()}"
    busy = view.busy(now, ep) if view is not None and ep is not None else None
    if s.ok_streak >= policy.successes_to_up:
        slow = _slow_chat(s, ep)
        if busy and slow:
            return State.OVERLOADED, "engine_saturated", _busy_detail(slow, busy, view)
        return State.UP, "all_checks_passed", ""
    primary = s.latest.get(policy.primary)
    failing = _worst(s, policy)
    if s.loading_since is not None:
        if now - s.loading_since > policy.startup_grace and not grace:
            return State.DOWN, "loading_too_long", f"/health 503 for {now - s.loading_since:.0f}s"
        return State.STARTING, "loading", _describe(primary)
    if primary is not None and not primary.success:
        if s.consecutive_failures(policy.primary) < n:
            return None, "", ""
        if grace:
            return State.STARTING, "recovery_grace", _describe(primary)
        if busy and _busy_failure(primary):
            return (
                State.OVERLOADED,
                "engine_saturated",
                _busy_detail(_describe(primary), busy, view),
            )
        if _answered_since(s, policy):
            # /health fails but inference answered since: alive, not well
            return State.DEGRADED, _reason(primary), _describe(primary)
        return State.DOWN, _reason(primary), _describe(primary)
    if failing is not None and s.consecutive_failures(failing.check) >= n:
        if grace:
            return State.STARTING, "recovery_grace", _describe(failing)
        if busy and _busy_failure(failing):
            return (
                State.OVERLOADED,
                "engine_saturated",
                _busy_detail(_describe(failing), busy, view),
            )
        return State.DEGRADED, _reason(failing), _describe(failing)
    return None, "", ""


def _saturation_ended(
    before: EngineView | None, after: EngineView, ep: EnginePolicy | None
) -> bool:
    return (
        ep is not None
        and before is not None
        and before.saturated(ep) is not None
        and after.saturated(ep) is None
    )


def _forget_busy_failures(
    latest: Mapping[Check, ProbeResult],
    failures: dict[Check, int],
    failing_since: dict[Check, float],
    t: float,
) -> None:
    """The queue drained: deadlines missed while it was full were the load's, not the
    server's. A server that keeps missing them now must do so N times afresh."""
    for check, result in latest.items():
        if check in VERDICT_CHECKS and not result.success and _busy_failure(result):
            failures[check] = 0
            failing_since[check] = t


def _busy_failure(result: ProbeResult) -> bool:
    """A failure a busy server shows: a missed deadline, or its own "too busy" answer."""
    return result.reason is Reason.TIMEOUT or result.status_code in (429, 503)


def _slow_chat(s: TargetStatus, ep: EnginePolicy | None) -> str | None:
    chat = s.latest.get(Check.CHAT)
    if ep is None or chat is None or not chat.success or chat.duration < ep.slow_chat:
        return None
    return f"chat answered in {chat.duration:.1f}s"


def _busy_detail(what: str, busy: str, view: EngineView | None) -> str:
    engine = f" ({view.describe()})" if view is not None else ""
    return f"{what}; engine busy, not broken: {busy}{engine}"


def _answered_since(s: TargetStatus, policy: Policy) -> bool:
    """Another check succeeded after the primary started failing: the server is not gone."""
    since = s.failing_since.get(policy.primary)
    if since is None:
        return True
    return any(
        c is not policy.primary
        and c in s.latest
        and s.latest[c].success
        and s.latest[c].timestamp >= since
        for c in policy.judged
    )


def _worst(s: TargetStatus, policy: Policy) -> ProbeResult | None:
    """The failing secondary check with the longest failure streak. One that cannot even
    connect counts only once the primary has passed since: until then the server may simply
    be gone, which is for the primary to say (down), not degraded."""
    primary = s.latest.get(policy.primary)
    failing = []
    for c in policy.judged:
        r = s.latest.get(c)
        if c is policy.primary or r is None or r.success:
            continue
        if r.reason is Reason.CONNECT_ERROR and not (
            primary is not None
            and primary.success
            and primary.timestamp > s.failing_since.get(c, r.timestamp)
        ):
            continue
        failing.append(r)
    if not failing:
        return None
    return max(failing, key=lambda r: s.consecutive_failures(r.check))


def _reason(result: ProbeResult) -> str:
    return f"{result.check.value}_{result.reason.value if result.reason else 'failed'}"


def _describe(result: ProbeResult | None) -> str:
    if result is None:
        return ""
    return f"{result.check.value}: {result.detail}" if result.detail else result.check.value


def _move(
    s: TargetStatus, target: str, now: float, to: State, reason: str, detail: str
) -> tuple[TargetStatus, Transition | None]:
    if to is s.state:
        return s, None
    transition = Transition(now, target, s.state, to, reason, detail)
    return replace(s, state=to, since=now, reason=reason, detail=detail), transition


def next_delay(status: TargetStatus, check: Check, interval: float, policy: Policy) -> float:
    """When to probe `check` again: fast while a failure is being confirmed, then a calmer
    cadence while the target is unwell, the normal interval when all is well."""
    if check not in policy.judged:
        return interval  # the engine view: its own cadence, no confirmation re-probes
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
        return policy.retry_interval
    return min(interval, 5 * policy.retry_interval)
