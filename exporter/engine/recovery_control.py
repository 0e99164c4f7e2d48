"""The core side of the recovery receiver's port: its view of targets, backed by the monitor
and the scheduler."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.engine.monitor import Monitor
from exporter.engine.scheduler import Scheduler
from exporter.engine.state import State
from exporter.probes.results import Check, Reason
from exporter.recovery.ports import TargetCheck

__all__ = ["MonitorControl"]


class MonitorControl:
    """Implements exporter.recovery.ports.TargetControl."""

    def __init__(self, monitor: Monitor, scheduler: Scheduler) -> None:
        self.monitor = monitor
        self.scheduler = scheduler

    def target_names(self) -> Sequence[str]:
        return list(self.monitor.targets)

    def has_target(self, name: str) -> bool:
        return name in self.monitor.targets

    def target_url(self, name: str) -> str:
        return self.monitor.targets[name].config.url

    def state(self, name: str) -> str:
        rt = self.monitor.targets.get(name)
        return rt.status.state.value if rt else "unknown"

    async def check_now(self, name: str) -> TargetCheck:
        results = await self.scheduler.probe_now(name)
        chat = next((r for r in results if r.check is Check.CHAT), None)
        failing = [
            f"{r.check.value}: {r.reason.value if r.reason else ''} {r.detail}".strip()
            for r in results
            if not r.success and r.offered and r.fault is None  # not offered / ours: no failure
        ]
        busy, waiting = self._engine(name)
        limited = next((r for r in results if r.reason is Reason.RATE_LIMITED), None)
        if busy is None and limited is not None:  # a 429: throttled, never restarted
            busy = f"rate limited ({limited.check.value}: {limited.detail})"
        ours = "; ".join(r.detail for r in results if r.fault is not None)[:500]
        return TargetCheck(
            healthy=bool(results) and all(r.success or not r.offered for r in results),
            answering=any(r.answered for r in results),
            state=self.state(name),
            chat_seconds=chat.duration if chat is not None else None,
            detail="; ".join(failing)[:500],
            overloaded=busy,
            engine_waiting=waiting,
            exporter_fault=ours or None,
            maintenance=self._maintenance(name),
        )

    def _maintenance(self, name: str) -> str | None:
        window = self.monitor.maintenance.active(name, self.monitor.clock())
        if window is None:
            return None
        return f"in maintenance until {window.end:.0f} ({window.source}): {window.reason}"

    def _engine(self, name: str) -> tuple[str | None, float | None]:
        """The live engine view: why it is busy (state overloaded, or saturated while making
        progress), and its queue length; (None, None) without a fresh view."""
        rt = self.monitor.targets.get(name)
        if rt is None:
            return None, None
        if rt.status.reason == "rate_limited" and rt.status.state is State.OVERLOADED:
            return rt.status.detail or "rate limited", None
        view, ep = rt.status.engine, rt.policy.engine
        if view is None or ep is None or not view.fresh(self.monitor.clock(), ep):
            return None, None
        if view.asleep():  # vLLM's /sleep: asleep on purpose, a restart would wake nothing
            return f"engine asleep on purpose ({view.describe()})", view.sample.waiting
        if rt.status.state is State.OVERLOADED:
            return rt.status.detail or "state overloaded", view.sample.waiting
        busy = view.busy(self.monitor.clock(), ep)
        return (f"engine {busy} ({view.describe()})" if busy else None), view.sample.waiting

    def begin_grace(self, name: str, seconds: float, reason: str) -> None:
        self.monitor.begin_grace(name, seconds, reason)
        self.scheduler.wake(name)

    def end_grace(self, name: str) -> None:
        self.monitor.end_grace(name)
