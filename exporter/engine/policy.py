"""A target's config turned into the state machine's policy (thresholds, which checks count,
the engine's windows): computed once per config, read by the pure rules."""

from __future__ import annotations

from exporter.config import TargetConfig
from exporter.engine.progress import EnginePolicy
from exporter.engine.state import Policy
from exporter.probes.results import Check

__all__ = ["engine_policy", "policy_for"]


def policy_for(target: TargetConfig, default_interval: float = 15.0) -> Policy:
    checks = tuple(c for c in Check if getattr(target.checks, c.value).enabled)
    interval = target.checks.engine.interval or target.interval or default_interval
    t = target.thresholds
    return Policy(
        checks=checks,
        failures_to_down=t.failures_to_down,
        successes_to_up=t.successes_to_up,
        retry_interval=t.retry_interval,
        startup_grace=t.startup_grace,
        engine=engine_policy(target, interval),
    )


def engine_policy(target: TargetConfig, interval: float) -> EnginePolicy | None:
    """The engine check's thresholds; a view older than three samples plus a timeout (or
    the stall window, if longer) is stale and concludes nothing."""
    spec = target.checks.engine
    if not spec.enabled:
        return None
    return EnginePolicy(
        stall_after=spec.stall_after,
        queue_saturated=spec.queue_saturated,
        kv_saturated=spec.kv_saturated,
        slow_chat=spec.slow_chat or target.checks.chat.timeout / 2,
        fresh_for=max(3 * interval + spec.timeout, spec.stall_after),
    )
