"""What recovery needs from the core, as a Protocol: the core provides an adapter.

Recovery never imports the core's internals; tests use a fake that implements this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["TargetCheck", "TargetControl"]


@dataclass(frozen=True)
class TargetCheck:
    """The result of one fresh round of probes against a target."""

    healthy: bool
    """Every enabled check passed (the state would be `up`)."""
    answering: bool
    """The server answered HTTP at all (health or chat got a response)."""
    state: str
    """unknown|starting|up|overloaded|degraded|down after the round."""
    chat_seconds: float | None = None
    """Duration of the chat probe if it ran."""
    detail: str = ""
    overloaded: str | None = None
    """Why the live engine view says busy, not broken (None: not busy, or no engine view)."""
    engine_waiting: float | None = None
    """Requests waiting in the engine, from the live engine view (None: no view)."""
    maintenance: str | None = None
    """The target is in an announced maintenance window: never acted on."""
    exporter_fault: str | None = None
    """The exporter's own fault kept a probe of the round from reaching the target (an
    unreadable key file...): the round says nothing, and nothing is restarted on it."""


@runtime_checkable
class TargetControl(Protocol):
    """The core's view of its targets, as recovery uses it."""

    def target_names(self) -> Sequence[str]:
        """Configured target names (to pre-initialise metric label sets)."""
        ...

    def has_target(self, name: str) -> bool: ...

    def target_url(self, name: str) -> str:
        """Base URL, e.g. http://127.0.0.1:8000 (used to read the server's own /metrics)."""
        ...

    def state(self, name: str) -> str:
        """The current state without probing (cheap; polled while a target is exhausted)."""
        ...

    async def check_now(self, name: str) -> TargetCheck:
        """Run one fresh round of the target's probes now and return what it saw."""
        ...

    def begin_grace(self, name: str, seconds: float, reason: str) -> None:
        """State -> starting for up to `seconds`: loading weights is not `down`."""
        ...

    def end_grace(self, name: str) -> None: ...
