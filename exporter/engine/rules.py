"""The state machine's decision: an ordered list of rules over the folded status (pure).
The first rule with a verdict wins; a new input (e.g. an engine verdict) is one more rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from exporter.engine.progress import EnginePolicy, EngineView
from exporter.engine.status import Policy, State, TargetStatus
from exporter.probes.results import Check, ProbeResult, Reason

__all__ = ["HOLD", "RULES", "Facts", "Verdict", "busy_failure", "decide"]

# A rule's verdict: (new state, reason, detail), or None to defer to the next rule.
# HOLD as the state means "decide nothing now".
Verdict = tuple[State | None, str, str]
HOLD: Verdict = (None, "", "")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules look at: the folded status, the policy, the time, and the grace flag."""

    s: TargetStatus
    policy: Policy
    now: float
    grace: bool

    @property
    def engine(self) -> tuple[EngineView, EnginePolicy] | None:
        """The engine view if the target has one and it is fresh (a stale one says nothing)."""
        view, ep = self.s.engine, self.policy.engine
        if view is None or ep is None or not view.fresh(self.now, ep):
            return None
        return view, ep

    @property
    def busy(self) -> str | None:
        """Why the engine counts as busy (saturated, still progressing), or None."""
        engine = self.engine
        return engine[0].busy(self.now, engine[1]) if engine is not None else None


def decide(f: Facts) -> Verdict:
    """The first rule with a verdict wins; none means the state stays."""
    for rule in RULES:
        verdict = rule(f)
        if verdict is not None:
            return verdict
    return HOLD


def _loading(f: Facts) -> Verdict | None:
    s, policy = f.s, f.policy
    if s.loading_since is None:
        return None
    if f.now - s.loading_since > policy.startup_grace and not f.grace:
        return State.DOWN, "loading_too_long", f"/health 503 for {f.now - s.loading_since:.0f}s"
    return State.STARTING, "loading", _describe(s.latest.get(policy.primary))


def _engine_stalled(f: Facts) -> Verdict | None:
    """Work pending and generation frozen for `stall_after`: inference is dead, whatever
    /health and the last chat probe said (vLLM #45094, #53130)."""
    engine = f.engine
    if engine is None or not engine[0].stalled(f.now, engine[1]):
        return None
    primary = f.s.latest.get(f.policy.primary)
    if engine[0].blocked and (primary is None or not primary.success):
        return None  # unanswered reads while the primary fails too: for the primary to say
    detail = f"engine: {engine[0].describe()}"
    if f.grace:
        return State.STARTING, "recovery_grace", detail
    return State.DEGRADED, "engine_stalled", detail


def _no_check_offered(f: Facts) -> Verdict | None:
    """A check was not offered and none is left that proves inference (chat disabled, no
    engine view): nothing can say whether the server works. The config's problem, not the
    server's: `unknown`, said plainly (docs/servers.md)."""
    policy = f.policy
    if not policy.unoffered or Check.CHAT in policy.judged or f.engine is not None:
        return None
    gone = ", ".join(sorted(c.value for c in policy.unoffered))
    return (
        State.UNKNOWN,
        "no_check_offered",
        f"the server does not offer {gone} and no enabled check proves inference: enable "
        "checks.chat, or set the target's server (docs/servers.md)",
    )


def _rate_limited(f: Facts) -> Verdict | None:
    """A judged check was refused with 429 (or Ollama's 503 "server busy") and the primary
    does not fail for another reason: the server answers and sheds load or enforces a quota.
    Busy or throttled, never broken: `overloaded`, never down or degraded, never restarted."""
    s, policy = f.s, f.policy
    limited = None
    for c in policy.judged:
        r = s.latest.get(c)
        if r is None or r.success:
            continue
        if r.reason is Reason.RATE_LIMITED:
            limited = limited or r
        elif c is policy.primary:
            return None  # e.g. /health refused: that decides, whatever a gateway said
    if limited is None:
        return None
    wait = f" (Retry-After {limited.retry_after:g}s)" if limited.retry_after is not None else ""
    return State.OVERLOADED, "rate_limited", f"{_describe(limited)}{wait}"


def _primary_failing(f: Facts) -> Verdict | None:
    s, policy = f.s, f.policy
    primary = s.latest.get(policy.primary)
    if primary is None or primary.success:
        return None
    if s.consecutive_failures(policy.primary) < policy.failures_to_down:
        return HOLD
    if f.grace:
        return State.STARTING, "recovery_grace", _describe(primary)
    if f.busy and busy_failure(primary):  # a busy server missing /health's deadline (ray #54070)
        return _overloaded(f, _describe(primary))
    if _answered_since(s, policy):
        # /health fails but inference answered since: alive, not well
        return State.DEGRADED, _reason(primary), _describe(primary)
    return State.DOWN, _reason(primary), _describe(primary)


def _awaiting_fresh(f: Facts) -> Verdict | None:
    """A check just recovered: wait for the others' fresh results (no stale verdict)."""
    if f.s.state is not State.UP and f.s.awaiting(f.policy):
        return HOLD
    return None


def _all_passed(f: Facts) -> Verdict | None:
    if f.s.ok_streak < f.policy.successes_to_up:
        return None
    engine, chat = f.engine, f.s.latest.get(Check.CHAT)
    if engine is not None and f.busy and chat is not None and chat.duration >= engine[1].slow_chat:
        return _overloaded(f, f"chat answered in {chat.duration:.1f}s")
    return State.UP, "all_checks_passed", ""


def _secondary_failing(f: Facts) -> Verdict | None:
    s = f.s
    failing = _worst(s, f.policy)
    if failing is None or s.consecutive_failures(failing.check) < f.policy.failures_to_down:
        return None
    if f.grace:
        return State.STARTING, "recovery_grace", _describe(failing)
    if f.busy and busy_failure(failing):
        return _overloaded(f, _describe(failing))
    cause = _frozen_engine(f, failing)
    if cause is not None:
        return State.DEGRADED, "engine_stalled", cause
    return State.DEGRADED, _reason(failing), _describe(failing)


def _frozen_engine(f: Facts, failing: ProbeResult) -> str | None:
    """The specific cause wins: a chat that timed out while an engine with work pending made
    no progress from the chat's start on is the engine's stall (the detail keeps both)."""
    engine = f.engine
    if failing.check is not Check.CHAT or failing.reason is not Reason.TIMEOUT or engine is None:
        return None
    unit = engine[0].frozen_since(failing.timestamp)
    if unit is None:
        return None
    return f"{_describe(failing)}; engine: {engine[0].describe()}"


def _overloaded(f: Facts, what: str) -> Verdict:
    engine = f.engine
    described = f" ({engine[0].describe()})" if engine is not None else ""
    return (
        State.OVERLOADED,
        "engine_saturated",
        f"{what}; engine busy, not broken: {f.busy}{described}",
    )


def busy_failure(result: ProbeResult) -> bool:
    """A failure a busy server shows: a missed deadline, or its own "too busy" answer."""
    return result.reason is Reason.TIMEOUT or result.status_code in (429, 503)


# the decision, in order; a new input (e.g. an engine verdict) is one more rule here
RULES: tuple[Callable[[Facts], Verdict | None], ...] = (
    _loading,
    _no_check_offered,
    _engine_stalled,
    _rate_limited,
    _primary_failing,
    _awaiting_fresh,
    _all_passed,
    _secondary_failing,
)


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
    for c in policy.secondaries:
        r = s.latest.get(c)
        if r is None or r.success:
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
