"""Is a live server busy rather than broken? The monitor's live engine view says.

The core reads the server's own /metrics every few seconds (the engine check) and concludes
`overloaded` when the engine makes progress with its queue or KV cache saturated; the fresh
round of probes before an action carries that conclusion (`TargetCheck.overloaded`) and the
queue length it saw. Restarting a busy server drops every request it holds and makes the
overload worse (ray #54070, ai-dynamo/dynamo #12151): it is never restarted.
"""

from __future__ import annotations

from exporter.config.recovery import OverloadConfig
from exporter.recovery.ports import TargetCheck

__all__ = ["overload_reason"]


def overload_reason(check: TargetCheck, cfg: OverloadConfig) -> str | None:
    """Why a restart would make things worse, or None. Only for a server that answers."""
    if not check.answering:
        return None
    if check.overloaded is not None:
        return f"{check.overloaded}: busy, not broken"
    waiting = check.engine_waiting
    if waiting is not None and waiting > cfg.queue_threshold:
        return f"{waiting:g} requests waiting > {cfg.queue_threshold:g}: busy, not broken"
    if (
        cfg.slow_chat_seconds is not None
        and check.chat_seconds is not None
        and check.chat_seconds >= cfg.slow_chat_seconds
        and check.state in ("degraded", "up")
    ):
        return f"answers slowly ({check.chat_seconds:.1f}s) but answers"
    return None
