"""Which targets are in maintenance now: the config's windows and those announced through the
API (`POST /api/v1/maintenance`). A window marks a target; it never changes how the target is
probed or judged. When it ends the monitor judges the target afresh (state.rejudge).

Announced windows live in memory: a restarted exporter forgets them (the config's stay), and
with two replicas each is told (`llm-heartbeat maintenance start --url A --url B`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from exporter.config.maintenance import MAX_MAINTENANCE, MaintenanceWindow

__all__ = ["MAX_MAINTENANCE", "MaintenanceBook", "Window"]


@dataclass(frozen=True, slots=True)
class Window:
    """One target's maintenance: from `start` to `end` (unix seconds), why, and who said so."""

    target: str
    start: float
    end: float
    reason: str
    source: str  # "api" or "config"

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "source": self.source,
        }


class MaintenanceBook:
    """The windows by target. `active` is asked on every probe: a dict lookup, nothing when
    no window exists."""

    def __init__(self) -> None:
        self._announced: dict[str, Window] = {}
        self._configured: dict[str, list[Window]] = {}
        # a target's config windows that began before this time were ended early
        self._ended: dict[str, float] = {}

    @property
    def empty(self) -> bool:
        return not self._announced and not self._configured

    def configure(self, windows: Iterable[MaintenanceWindow]) -> None:
        """The config's windows (at start and on every reload)."""
        configured: dict[str, list[Window]] = {}
        for w in windows:
            for target in w.targets:
                window = Window(target, w.start_ts, w.end_ts, w.reason, "config")
                configured.setdefault(target, []).append(window)
        self._configured = configured

    def announce(self, target: str, now: float, seconds: float, reason: str) -> Window:
        """Maintenance from now for `seconds` (replacing an earlier announcement)."""
        if not 0 < seconds <= MAX_MAINTENANCE:
            raise ValueError("a maintenance lasts more than 0 seconds and at most 7 days")
        window = Window(target, now, now + seconds, reason, "api")
        self._announced[target] = window
        return window

    def end(self, target: str, now: float) -> Window | None:
        """End the target's maintenance now (announced or configured); the window it was in."""
        current = self.active(target, now)
        self._announced.pop(target, None)
        if current is not None and current.source == "config":
            self._ended[target] = now
        return current

    def active(self, target: str, now: float) -> Window | None:
        """The window the target is in now, if any."""
        announced = self._announced.get(target)
        if announced is not None:
            if announced.start <= now < announced.end:
                return announced
            if now >= announced.end:
                del self._announced[target]  # over: forgotten
        ended = self._ended.get(target)
        for window in self._configured.get(target, ()):
            if window.start <= now < window.end and (ended is None or window.start > ended):
                return window
        return None

    def all_active(self, now: float, targets: Iterable[str]) -> list[Window]:
        """The windows active now, of the given targets (the configured ones)."""
        if self.empty:
            return []
        found = (self.active(name, now) for name in targets)
        return [w for w in found if w is not None]
