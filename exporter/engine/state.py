"""The per-target state machine: pure functions over values, no I/O, no clock of its own.

States: unknown -> (starting | up | overloaded | degraded | down). The rules, in order
(engine/rules.py):
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
- a check the server does not offer (/health answering 404 or 405, reason `not_offered`)
  neither passes nor fails: it leaves the judged checks, so the primary becomes models (else
  chat), and no failure is counted. With no check left that proves inference (no chat, no
  engine view) the state is `unknown`, reason `no_check_offered`: the config's problem.
- `overloaded`, reason `rate_limited`, when a judged check was refused with 429 (or Ollama's
  503 "server busy") and the primary does not fail for another reason: busy or throttled,
  never down or degraded, never sent to recovery.
- the engine view (the server's own /metrics, exporter/engine/progress.py): work pending and
  generation not advancing for `stall_after` is `degraded`, reason `engine_stalled`, even
  while every probe passes; a chat probe that is slow or misses its deadline (or a /health
  that misses its deadline) while the engine makes progress with its queue or KV cache
  saturated is `overloaded`: busy, not broken, never counted as down or degraded.
  The engine check itself never passes or fails a target.

The way back is direct: when a check recovers, the other checks' failure streaks are recounted
from that moment, and a failure of a probe that started before it is not counted (it describes
the outage, not the server now).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from exporter.engine.progress import EnginePolicy, EngineView, fold_blocked, fold_sample
from exporter.engine.rules import Facts, busy_failure, decide
from exporter.engine.status import Policy, State, TargetStatus, Transition, awaiting
from exporter.probes.engines import ENGINES
from exporter.probes.results import VERDICT_CHECKS, Check, ProbeResult, Reason

__all__ = [
    "Policy",
    "State",
    "TargetStatus",
    "Transition",
    "begin_grace",
    "is_stale",
    "observe",
    "offered_policy",
    "rejudge",
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
        and result.offered  # "no such endpoint" is true whenever it was said
        and status.recovered_at is not None
        and result.timestamp < status.recovered_at
    )


def offered_policy(policy: Policy, latest: Mapping[Check, ProbeResult]) -> Policy:
    """The policy without the checks whose latest answer was "not offered" (the same object
    while that set is unchanged: this runs once per probe)."""
    unoffered = frozenset(
        c for c in VERDICT_CHECKS if (r := latest.get(c)) is not None and not r.offered
    )
    if unoffered == policy.unoffered:
        return policy
    return replace(policy, unoffered=unoffered)


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
    recovered_at = status.recovered_at
    fresh = status.fresh if check in status.fresh else status.fresh | {check}
    previous = latest.get(check)
    if _recovers(status, result, previous, policy):
        # back: what the other checks saw so far describes the outage, not the server now
        recovered_at, fresh = result.timestamp, frozenset({check})
        for c in policy.judged:
            if c is check:
                continue
            failures.pop(c, None)
            failing_since.pop(c, None)
    latest[check] = result
    policy = offered_policy(policy, latest)
    counts = not result.success and result.offered  # "not offered" is no failure
    failures[check] = failures.get(check, 0) + 1 if counts else 0
    if counts:
        failing_since.setdefault(check, result.timestamp)
    else:
        failing_since.pop(check, None)
    health = latest.get(Check.HEALTH)
    loading = health is not None and health.loading and Check.HEALTH in policy.checks
    grace = status.grace_until is not None and now < status.grace_until
    engine = status.engine
    if result.engine is not None:
        engine = fold_sample(engine, result.engine, result.timestamp)
        if _saturation_ended(status.engine, engine, policy.engine):
            _forget_busy_failures(latest, failures, failing_since, result.timestamp)
    elif _loop_blocked(result, engine, latest.get(policy.primary)):
        engine = fold_blocked(engine, result.timestamp)
    all_ok = not awaiting(recovered_at, fresh, policy) and all(
        c in latest and latest[c].success for c in policy.judged
    )
    # built field by field, not by dataclasses.replace: this runs once per probe
    new = TargetStatus(
        state=status.state,
        since=status.since,
        latest=latest,
        failures=failures,
        failing_since=failing_since,
        ok_streak=status.ok_streak + 1 if all_ok else 0,
        grace_until=status.grace_until if grace else None,
        loading_since=(status.loading_since or now) if loading else None,
        reason=status.reason,
        detail=status.detail,
        recovered_at=recovered_at,
        fresh=fresh,
        engine=engine,
    )
    target_state, reason, detail = decide(Facts(new, policy, now, grace))
    if target_state is None:
        return new, None
    if target_state is State.UP and new.grace_until is not None:
        new = replace(new, grace_until=None)  # back: the grace period has done its job
    return _move(new, target, now, target_state, reason, detail)


def _recovers(
    status: TargetStatus, result: ProbeResult, previous: ProbeResult | None, policy: Policy
) -> bool:
    """A check passes after failing (the primary in any state, any check when not up) and no
    recovery is being checked already (a further check passing just joins that one)."""
    if (
        result.check not in VERDICT_CHECKS
        or not result.success
        or previous is None
        or previous.success
        or previous.reason is Reason.NOT_OFFERED
        or status.awaiting(policy)
    ):
        return False
    return result.check is policy.primary or status.state is not State.UP


def _loop_blocked(
    result: ProbeResult, view: EngineView | None, primary: ProbeResult | None
) -> bool:
    """A metrics read that timed out on a server whose metrics page waits on its inference
    loop (llama-server), while the primary check answers: the loop is stuck, not the server
    gone (that is the primary check's to say)."""
    if result.check is not Check.ENGINE or result.reason is not Reason.TIMEOUT or view is None:
        return False
    engine = ENGINES.get(view.sample.flavour)
    return (
        engine is not None and engine.read_waits_on_loop and primary is not None and primary.success
    )


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
        if check in VERDICT_CHECKS and not result.success and busy_failure(result):
            failures[check] = 0
            failing_since[check] = t


def _move(
    s: TargetStatus, target: str, now: float, to: State, reason: str, detail: str
) -> tuple[TargetStatus, Transition | None]:
    if to is s.state:
        return s, None
    transition = Transition(now, target, s.state, to, reason, detail)
    return replace(s, state=to, since=now, reason=reason, detail=detail), transition


def rejudge(
    status: TargetStatus, target: str, now: float, reason: str, detail: str
) -> tuple[TargetStatus, Transition | None]:
    """Judge the target afresh from now (a maintenance ended): what the checks saw before is
    not evidence (streaks, the recovery in progress), and the state is `unknown` until fresh
    results decide it. The latest results stay visible (stale)."""
    new = replace(
        status,
        ok_streak=0,
        failures={},
        failing_since={},
        grace_until=None,
        loading_since=None,
        recovered_at=now,
        fresh=frozenset(),
    )
    return _move(new, target, now, State.UNKNOWN, reason, detail)
