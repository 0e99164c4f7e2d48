"""The rails, as pure functions over a target's attempt record: no I/O, no clock of its own.

in flight -> skipped_in_progress; exhausted -> skipped_exhausted; K attempts in the window ->
exhausted; too soon after the last attempt (cooldown, or exponential backoff after failures) ->
skipped_cooldown; otherwise the action may run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from exporter.config.recovery import RailsConfig

__all__ = ["Attempt", "Decision", "TargetRecord", "decide", "earliest_next", "should_exhaust"]

Verdict = Literal["go", "skipped_in_progress", "skipped_exhausted", "skipped_cooldown"]


@dataclass
class Attempt:
    """One action taken against a target; `result` stays None until verification ends."""

    started_at: float
    rule: str
    action: str
    finished_at: float | None = None
    result: str | None = None

    @property
    def ended_at(self) -> float:
        return self.finished_at if self.finished_at is not None else self.started_at


@dataclass
class TargetRecord:
    """What the rails remember about one target (rebuilt from the history file on start)."""

    attempts: list[Attempt] = field(default_factory=list)
    exhausted: bool = False
    exhausted_at: float | None = None
    busy: bool = False

    @property
    def last_attempt_at(self) -> float | None:
        return self.attempts[-1].started_at if self.attempts else None

    def in_window(self, now: float, rails: RailsConfig) -> list[Attempt]:
        return [a for a in self.attempts if a.started_at > now - rails.window]

    def prune(self, now: float, rails: RailsConfig) -> None:
        """Forget attempts that no rail can see any more, keeping the last for the cooldown."""
        horizon = max(rails.window, rails.cooldown, rails.backoff_max)
        keep = [a for a in self.attempts if a.ended_at > now - horizon]
        if not keep and self.attempts:
            keep = self.attempts[-1:]
        self.attempts = keep


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    exhaust: bool = False
    """True when this decision is the one that declares the target exhausted."""
    next_allowed_at: float | None = None
    reason: str = ""


def _failure_streak(attempts: list[Attempt]) -> int:
    streak = 0
    for attempt in reversed(attempts):
        if attempt.result == "success":
            break
        streak += 1
    return streak


def earliest_next(record: TargetRecord, now: float, rails: RailsConfig) -> float | None:
    """When the next attempt may start: cooldown after each, doubling backoff after failures."""
    recent = record.in_window(now, rails)
    if not record.attempts:
        return None
    last = record.attempts[-1]
    streak = _failure_streak(recent) if recent else 0
    gap = rails.cooldown
    if streak > 0:
        backoff = min(rails.backoff_max, rails.backoff_base * 2 ** (streak - 1))
        gap = max(gap, backoff)
    return last.ended_at + gap


def decide(record: TargetRecord, now: float, rails: RailsConfig) -> Decision:
    """May an action start against this target now?"""
    if record.busy:
        return Decision("skipped_in_progress", reason="another recovery of this target is running")
    if record.exhausted:
        return Decision("skipped_exhausted", reason="automatic recovery gave up; reset required")
    recent = record.in_window(now, rails)
    if len(recent) >= rails.max_attempts:
        return Decision(
            "skipped_exhausted",
            exhaust=True,
            reason=f"{len(recent)} attempts within {rails.window:g}s (max {rails.max_attempts})",
        )
    nxt = earliest_next(record, now, rails)
    if nxt is not None and now < nxt:
        return Decision(
            "skipped_cooldown",
            next_allowed_at=nxt,
            reason=f"next attempt allowed in {nxt - now:.0f}s",
        )
    return Decision("go")


def should_exhaust(record: TargetRecord, now: float, rails: RailsConfig) -> bool:
    """After an outcome: the K-th attempt in the window failed, so stop trying."""
    recent = record.in_window(now, rails)
    return bool(recent) and recent[-1].result == "failed" and len(recent) >= rails.max_attempts
