"""Real traffic is the heartbeat: when the synthetic chat may rest (pure, no clock of its own).

A chat probe on a busy server proves nothing the server's own counters do not already prove
(requests running, generation advancing), waits in the users' queue and lands in their
latency figures. So while the engine view shows that, the chat is not sent, up to `max_skip`
after the last one (content, model and time to first token are still checked now and then).
It always runs when the view is missing, stale or stalled, when the server is idle, while any
check's failure is being confirmed, and while a recovery is being checked. On a saturated
engine it is sent once (what a user waits is the evidence for `overloaded`), then backs off
instead of joining the queue again, also once it has failed there (busy, not broken).

A skipped chat is not a result: the state machine never sees it, so the last real answer
stays the chat's evidence (docs/probe-cost.md; `llm_probe_skipped_total` counts the skips).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from exporter.engine.progress import EnginePolicy, EngineView
from exporter.engine.rules import busy_failure
from exporter.engine.status import Policy, State, TargetStatus
from exporter.probes.results import Check

__all__ = ["Sent", "Skip", "pressed", "sent_now", "skip_reason"]


class Skip(StrEnum):
    """Why a chat probe was not sent (the `reason` label of llm_probe_skipped_total)."""

    TRAFFIC = "traffic"  # real requests running, generation advancing
    SATURATED = "saturated"  # queue or KV cache saturated, still advancing: backing off


@dataclass(frozen=True, slots=True)
class Sent:
    """The last chat probe sent: when (Unix time), and whether the engine was saturated then."""

    at: float
    saturated: bool


def skip_reason(
    status: TargetStatus, policy: Policy, sent: Sent | None, max_skip: float, now: float
) -> Skip | None:
    """Why the chat due now may rest, or None: send it."""
    ep, view = policy.engine, status.engine
    chat = status.latest.get(Check.CHAT)
    if (
        ep is None
        or view is None
        or chat is None
        or sent is None
        or now - sent.at >= max_skip  # the floor: content and model checked now and then
        or status.state not in (State.UP, State.OVERLOADED)
        or status.awaiting(policy)
        or status.grace_until is not None
        or not view.fresh(now, ep)
        or view.stalled(now, ep)
        or view.time <= chat.timestamp + chat.duration  # the view must not count our own request
    ):
        return None
    for check in policy.judged:
        result = status.latest.get(check)
        if result is None or (not result.success and check is not Check.CHAT):
            return None  # a failure being confirmed: every check speaks
    saturated = pressed(view, now, ep)
    if not chat.success:
        # only a confirmed busy failure backs off; any other failure is being confirmed
        confirmed = status.consecutive_failures(Check.CHAT) >= policy.failures_to_down
        backs_off = saturated and confirmed and busy_failure(chat)
        return Skip.SATURATED if backs_off and status.state is State.OVERLOADED else None
    if saturated:
        return Skip.SATURATED if sent.saturated else None  # measured once, then back off
    return Skip.TRAFFIC if view.advancing(now, ep) else None


def sent_now(status: TargetStatus, policy: Policy, now: float) -> Sent:
    """The record of a chat probe sent at `now`."""
    ep, view = policy.engine, status.engine
    return Sent(now, ep is not None and view is not None and pressed(view, now, ep))


def pressed(view: EngineView, now: float, ep: EnginePolicy) -> bool:
    """Saturated (queue or KV cache) and still advancing at the latest sample: a probe would
    only wait in the queue. Counters that froze may be a stall starting: not pressed."""
    return view.busy(now, ep) is not None and view.advancing(now, ep)
