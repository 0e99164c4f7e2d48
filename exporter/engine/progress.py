"""The engine view of one target: its samples folded over time. Pure values, no clock.

Progress is judged over a window of samples, never from one (vLLM's /metrics can lag by
seconds): the engine is *stalled* when work was pending in every sample of at least
`stall_after` seconds (and at least three samples) while its progress counter never rose.
Ages are measured between sample times, so a pause of the monitor itself cannot look like a
stall: the first sample after the pause shows whatever the engine did meanwhile. A server with
several engines (vLLM's data-parallel `engine`, SGLang's `dp_rank`) has each judged on its own:
one stalled engine is not hidden by a healthy one, and an engine asleep on purpose (vLLM's
`engine_sleep_state`) is never stalled.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.probes.results import EngineSample

__all__ = ["EnginePolicy", "EngineView", "UnitView", "fold_blocked", "fold_sample"]

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
class UnitView:
    """One engine of the server (a data-parallel rank, or the only one) over time."""

    name: str
    advanced_at: float
    """Sample time at which this engine's progress was last seen (or it had nothing to do)."""
    quiet: int = 0
    """Samples in a row with work pending and no progress."""
    pending: float = 0.0
    asleep: bool = False

    def label(self) -> str:
        return f"engine {self.name}" if self.name else "engine"


@dataclass(frozen=True, slots=True)
class EngineView:
    sample: EngineSample
    time: float
    units: tuple[UnitView, ...] = ()
    tokens_per_second: float | None = None
    resets: int = 0
    note: str = ""
    blocked: int = 0
    """Metrics reads in a row that got no answer from a server whose metrics page waits on
    its inference loop (llama-server): the read itself is work the loop does not do."""

    @property
    def pending(self) -> float:
        return (self.sample.running or 0.0) + (self.sample.waiting or 0.0)

    @property
    def advanced_at(self) -> float:
        """The oldest last progress of an engine with work pending (the sample time if none)."""
        stuck = [u.advanced_at for u in self.units if u.pending > 0 and not u.asleep]
        return min(stuck, default=self.time)

    @property
    def progress_age(self) -> float:
        """Seconds since generation last advanced while work was pending (0 when idle)."""
        return self.time - self.advanced_at

    def fresh(self, now: float, policy: EnginePolicy) -> bool:
        return now - self.time <= policy.fresh_for

    def stalled_unit(self, now: float, policy: EnginePolicy) -> UnitView | None:
        """An engine with work pending whose progress has not moved for `stall_after` (and
        at least MIN_QUIET_SAMPLES samples), awake, in a fresh view; None if there is none."""
        if not self.fresh(now, policy) or self.sample.progress is None:
            return None
        for u in self.units:
            if (
                not u.asleep
                and u.pending > 0
                and u.quiet >= MIN_QUIET_SAMPLES
                and self.time - u.advanced_at >= policy.stall_after
            ):
                return u
        return None

    def stalled(self, now: float, policy: EnginePolicy) -> bool:
        return self.stalled_unit(now, policy) is not None

    def frozen_since(self, t: float) -> UnitView | None:
        """An awake engine with work pending that has not advanced since `t`, as seen by a
        sample taken after `t` (a probe that waited from `t` on waited on it)."""
        if self.sample.progress is None or self.time <= t:
            return None
        for u in self.units:
            if not u.asleep and u.pending > 0 and u.quiet >= 1 and u.advanced_at <= t:
                return u
        return None

    def advancing(self, now: float, policy: EnginePolicy) -> bool:
        """Requests running and the progress counter rose at the latest sample: the server's
        own counters prove that inference works (engine/thrift.py lets the chat rest)."""
        return (
            self.fresh(now, policy)
            and (self.sample.running or 0.0) > 0
            and self.sample.progress is not None
            and bool(self.units)
            # every engine with work advanced at this sample: one stalled data-parallel
            # engine beside a busy one still gets its chat
            and all(u.quiet == 0 and u.advanced_at == self.time for u in self.units if u.pending)
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

    def asleep(self) -> bool:
        """Every engine sleeps on purpose (vLLM's /sleep): nothing to judge, nothing to restart."""
        return bool(self.units) and all(u.asleep for u in self.units)

    def describe(self) -> str:
        s = self.sample
        parts = [s.flavour + (f" ({s.source})" if s.source else "")]
        for label, value in (("running", s.running), ("waiting", s.waiting)):
            if value is not None:
                parts.append(f"{label}={value:g}")
        if s.kv_usage is not None:
            parts.append(f"kv={s.kv_usage:.0%}")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        if self.blocked:
            parts.append(f"metrics unanswered {self.blocked}x (inference loop blocked?)")
        named = len(self.units) > 1 or any(u.name for u in self.units)
        for u in self.units:
            age = self.time - u.advanced_at
            if u.asleep:
                parts.append(f"{u.label()} asleep")
            elif u.pending > 0 and age > 0:
                parts.append(f"{u.label() + ': ' if named else ''}no progress for {age:.0f}s")
        return " ".join(parts)


def _units(
    view: EngineView | None, sample: EngineSample, t: float, pad: float = 0.0
) -> tuple[UnitView, ...]:
    """Each engine's view after `sample` at `t` (`pad`: pending work the sample cannot show)."""
    before = {u.name: u for u in view.units} if view is not None else {}
    progress = {u.name: u.progress for u in view.sample.units()} if view is not None else {}
    out = []
    for u in sample.units():
        prev, was = before.get(u.name), progress.get(u.name)
        pending = (u.running or 0.0) + max(0.0, (u.waiting or 0.0) - u.deferred) + pad
        moved = u.progress is None or was is None or u.progress > was
        if prev is None or moved or pending <= 0 or u.asleep:
            out.append(UnitView(u.name, t, 0, pending, u.asleep))
        else:
            out.append(UnitView(u.name, prev.advanced_at, prev.quiet + 1, pending, u.asleep))
    return tuple(out)


def fold_sample(view: EngineView | None, sample: EngineSample, t: float) -> EngineView:
    """The view after one more sample taken at `t`. A counter that goes backwards is a
    restart of the server: the baseline starts over, nothing is concluded from the drop."""
    if view is None or t <= view.time:
        return EngineView(sample=sample, time=t, units=_units(None, sample, t))
    prev = view.sample
    if sample.progress_name != prev.progress_name:  # another counter (SGLang's decode
        # counter appears with the first decode): a new baseline, not a restart
        return EngineView(sample=sample, time=t, units=_units(None, sample, t), resets=view.resets)
    before = {u.name: u.progress for u in prev.units()}
    reset = any(
        u.progress is not None
        and before.get(u.name) is not None
        and u.progress < (before[u.name] or 0.0)
        for u in sample.units()
    ) or (
        sample.generated is not None
        and prev.generated is not None
        and sample.generated < prev.generated
    )
    if reset:
        return EngineView(
            sample=sample,
            time=t,
            units=_units(None, sample, t),
            resets=view.resets + 1,
            note="counters went backwards (server restarted?): baseline reset",
        )
    tps = None
    if sample.generated is not None and prev.generated is not None:
        tps = (sample.generated - prev.generated) / (t - view.time)
    return EngineView(
        sample=sample,
        time=t,
        units=_units(view, sample, t),
        tokens_per_second=tps,
        resets=view.resets,
    )


def fold_blocked(view: EngineView | None, t: float) -> EngineView | None:
    """A metrics read at `t` that got no answer from a server whose metrics page is served by
    its inference loop: its counters stood still, and the read itself was pending work."""
    if view is None or t <= view.time:
        return view
    return EngineView(
        sample=view.sample,
        time=t,
        units=_units(view, view.sample, t, pad=1.0),
        resets=view.resets,
        blocked=view.blocked + 1,
    )
