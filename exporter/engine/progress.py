"""The engine view of one target: its samples folded over time. Pure values, no clock.

Progress is judged over a window of samples, never from one (vLLM's /metrics can lag by
seconds): the engine is *stalled* when work was pending in every sample of at least
`stall_after` seconds (and at least three samples) while its progress counter never rose.
Ages are measured between sample times, so a pause of the monitor itself cannot look like a
stall: the first sample after the pause shows whatever the engine did meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.probes.results import EngineSample

__all__ = ["EnginePolicy", "EngineView", "fold_sample"]

MIN_QUIET_SAMPLES = 2


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    """The engine check's thresholds (from checks.engine)."""

    stall_after: float = 20.0
    queue_saturated: float = 5.0
    kv_saturated: float = 0.8
    slow_chat: float = 15.0
    fresh_for: float = 20.0
    """A view older than this says nothing (the engine check has stopped answering)."""


@dataclass(frozen=True, slots=True)
class EngineView:
    sample: EngineSample
    time: float
    advanced_at: float
    """Sample time at which progress was last seen (or nothing was pending)."""
    quiet: int = 0
    """Samples in a row with work pending and no progress."""
    tokens_per_second: float | None = None
    resets: int = 0
    note: str = ""

    @property
    def pending(self) -> float:
        return (self.sample.running or 0.0) + (self.sample.waiting or 0.0)

    @property
    def progress_age(self) -> float:
        """Seconds since generation last advanced while work was pending (0 when idle)."""
        return self.time - self.advanced_at

    def fresh(self, now: float, policy: EnginePolicy) -> bool:
        return now - self.time <= policy.fresh_for

    def stalled(self, now: float, policy: EnginePolicy) -> bool:
        return (
            self.fresh(now, policy)
            and self.sample.progress is not None
            and self.pending > 0
            and self.quiet >= MIN_QUIET_SAMPLES
            and self.progress_age >= policy.stall_after
        )

    def advancing(self, now: float, policy: EnginePolicy) -> bool:
        """Requests running and the progress counter rose at the latest sample: the server's
        own counters prove that inference works (engine/thrift.py lets the chat rest)."""
        return (
            self.fresh(now, policy)
            and (self.sample.running or 0.0) > 0
            and self.sample.progress is not None
            and self.quiet == 0
            and self.advanced_at == self.time
            and not self.note  # a counter reset is a restart, not progress
        )

    def saturated(self, policy: EnginePolicy) -> str | None:
        """Why the engine counts as saturated, or None."""
        waiting, kv = self.sample.waiting, self.sample.kv_usage
        if waiting is not None and waiting >= policy.queue_saturated:
            return f"{waiting:g} requests waiting"
        if kv is not None and kv >= policy.kv_saturated:
            return f"KV cache {kv:.0%} used"
        return None

    def busy(self, now: float, policy: EnginePolicy) -> str | None:
        """Saturated while still making progress: why, or None."""
        if not self.fresh(now, policy) or self.stalled(now, policy):
            return None
        return self.saturated(policy)

    def describe(self) -> str:
        s = self.sample
        parts = [s.flavour]
        for label, value in (("running", s.running), ("waiting", s.waiting)):
            if value is not None:
                parts.append(f"{label}={value:g}")
        if s.kv_usage is not None:
            parts.append(f"kv={s.kv_usage:.0%}")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        if self.pending > 0 and self.progress_age > 0:
            parts.append(f"no progress for {self.progress_age:.0f}s")
        return " ".join(parts)


def fold_sample(view: EngineView | None, sample: EngineSample, t: float) -> EngineView:
    """The view after one more sample taken at `t`. A counter that goes backwards is a
    restart of the server: the baseline starts over, nothing is concluded from the drop."""
    if view is None or t <= view.time:
        return EngineView(sample=sample, time=t, advanced_at=t)
    prev = view.sample
    reset = (
        sample.progress is not None
        and prev.progress is not None
        and sample.progress < prev.progress
    ) or (
        sample.generated is not None
        and prev.generated is not None
        and sample.generated < prev.generated
    )
    if reset:
        return EngineView(
            sample=sample,
            time=t,
            advanced_at=t,
            resets=view.resets + 1,
            note="counters went backwards (server restarted?): baseline reset",
        )
    pending = (sample.running or 0.0) + (sample.waiting or 0.0)
    moved = sample.progress is None or prev.progress is None or sample.progress > prev.progress
    idle = pending <= 0
    tps = None
    if sample.generated is not None and prev.generated is not None:
        tps = (sample.generated - prev.generated) / (t - view.time)
    return EngineView(
        sample=sample,
        time=t,
        advanced_at=t if moved or idle else view.advanced_at,
        quiet=0 if moved or idle else view.quiet + 1,
        tokens_per_second=tps,
        resets=view.resets,
    )
