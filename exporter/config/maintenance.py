"""Maintenance windows in the config: a target announced as being worked on, for a while.

During a window the target's probes keep running and its state stays honest; the target is
marked (`llm_target_maintenance{target} 1`), no shipped alert fires for it, and the recovery
receiver never acts on it (docs/runbooks.md, "Maintenance"). Windows can also be announced
and ended through the API (`POST /api/v1/maintenance`, `llm-heartbeat maintenance`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from exporter.config.base import NAME, Strict
from exporter.config.durations import Duration

__all__ = ["MAX_MAINTENANCE", "MaintenanceWindow"]

MAX_MAINTENANCE = 7 * 86400.0  # a longer "maintenance" is a target that should be removed


class MaintenanceWindow(Strict):
    """`targets` in maintenance from `start` until `end` (or for `duration`)."""

    targets: list[str] = Field(min_length=1)
    start: datetime
    end: datetime | None = None
    duration: Duration | None = Field(default=None, gt=0)
    reason: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _check(self) -> MaintenanceWindow:
        for name in self.targets:
            if not NAME.match(name):
                raise ValueError(f"targets: {name!r} is not a target name")
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise ValueError("give times with a time zone, e.g. 2026-12-07T22:00:00Z")
        if (self.end is None) == (self.duration is None):
            raise ValueError("set either end or duration")
        if not 0 < self.end_ts - self.start_ts <= MAX_MAINTENANCE:
            raise ValueError("a window must end after it starts, and last at most 7 days")
        return self

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        if self.end is not None:
            return self.end.timestamp()
        return self.start_ts + (self.duration or 0.0)
