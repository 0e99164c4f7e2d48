"""JSON views of the monitor for the status API and the status page."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from exporter.engine.monitor import Monitor, TargetRuntime
from exporter.probes.results import ProbeResult

__all__ = ["result_view", "target_view", "targets_view"]


def result_view(result: ProbeResult) -> dict[str, Any]:
    view: dict[str, Any] = {
        "success": result.success,
        "timestamp": result.timestamp,
        "duration_seconds": round(result.duration, 6),
        "http_status": result.status_code,
        "reason": result.reason.value if result.reason else None,
        "detail": result.detail,
    }
    if result.ttft is not None:
        view["ttft_seconds"] = round(result.ttft, 6)
    if result.max_stall is not None:
        view["max_stall_seconds"] = round(result.max_stall, 6)
    if result.tokens_per_second is not None:
        view["tokens_per_second"] = round(result.tokens_per_second, 3)
    if result.completion_tokens is not None:
        view["completion_tokens"] = result.completion_tokens
    if result.content is not None:
        view["content"] = result.content[:200]
    if result.models:
        view["models"] = list(result.models[:20])
    if result.engine is not None:
        view["engine"] = asdict(result.engine)
    return view


def target_view(rt: TargetRuntime, transitions: list[dict[str, Any]]) -> dict[str, Any]:
    st = rt.status
    return {
        "name": rt.name,
        "url": rt.config.safe_url,
        "model": rt.model,
        "state": st.state.value,
        "since": st.since,
        "reason": st.reason,
        "detail": st.detail,
        "grace_until": st.grace_until,
        "checks": {c.value: result_view(r) for c, r in st.latest.items()},
        "consecutive_failures": {c.value: st.consecutive_failures(c) for c in rt.policy.checks},
        "recent": list(rt.recent),
        "transitions": [t for t in transitions if t.get("target") == rt.name][-20:],
    }


def targets_view(monitor: Monitor, now: float) -> dict[str, Any]:
    transitions = list(monitor.transitions)
    # grouped in one pass: filtering the whole history per target is O(targets x history)
    by_target: dict[Any, list[dict[str, Any]]] = {}
    for t in transitions:
        by_target.setdefault(t.get("target"), []).append(t)
    return {
        "generated_at": now,
        "targets": [
            target_view(rt, by_target.get(rt.name, [])[-20:]) for rt in monitor.targets.values()
        ],
        "transitions": transitions[-50:],
    }
