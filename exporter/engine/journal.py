"""What the monitor says in the log: one line per transition (a warning when the target gets
worse), one when the engine view appears, goes or changes its reason (not every sample)."""

from __future__ import annotations

import logging

from exporter.engine.state import State, Transition
from exporter.probes.results import ProbeResult

__all__ = ["log_engine_change", "log_transition"]

log = logging.getLogger("exporter.engine.state")


def log_transition(t: Transition) -> None:
    """The log line of a transition: a warning when the target gets worse."""
    worse = (State.DOWN, State.DEGRADED, State.OVERLOADED)
    level = logging.WARNING if t.to_state in worse else logging.INFO
    record = t.as_dict()
    log.log(
        level,
        "target %s: %s -> %s (%s) %s",
        t.target,
        t.from_state.value,
        t.to_state.value,
        t.reason,
        t.detail,
        extra={"event": "transition", **{f"t_{k}": v for k, v in record.items()}},
    )


def log_engine_change(name: str, before: ProbeResult | None, after: ProbeResult) -> None:
    """Say once when the engine view appears, goes away or changes its reason (not every 5 s)."""
    key = (after.success, after.reason, after.status_code)
    if before is not None and (before.success, before.reason, before.status_code) == key:
        return
    if after.success and after.engine is not None:
        log.info("target %s: engine view from %s metrics", name, after.engine.flavour)
    elif after.success:
        log.info("target %s: %s", name, after.detail)
    else:
        reason = after.reason.value if after.reason else "failed"
        log.warning("target %s: no engine view (%s): %s", name, reason, after.detail)
