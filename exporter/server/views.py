"""JSON views of the monitor for the status API and the status page.

Beside the machine codes each view carries `summary`, the short human words for them
(`words.py`), and every check result says whether it is `stale`: older than the target's
current state, so not evidence for it (a paused check is not re-run while a target is down)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from exporter.engine.maintenance import Window
from exporter.engine.monitor import Monitor, TargetRuntime
from exporter.probes.results import ProbeResult
from exporter.server.words import check_summary, state_summary
from exporter.util.faults import FAULTS

__all__ = ["result_view", "target_view", "targets_view"]


def result_view(result: ProbeResult) -> dict[str, Any]:
    view: dict[str, Any] = {
        "success": result.success,
        "timestamp": result.timestamp,
        "duration_seconds": round(result.duration, 6),
        "http_status": result.status_code,
        "reason": result.reason.value if result.reason else None,
        "detail": result.detail,
        # false: the server has no such endpoint; neither a pass nor a failure
        "offered": result.offered,
        "summary": ""
        if result.success
        else check_summary(
            result.reason.value if result.reason else None, result.detail, result.status_code
        ),
    }
    if result.retry_after is not None:
        view["retry_after_seconds"] = result.retry_after
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


# A result that ended this close before the state changed is the one that changed it.
STALE_SLACK = 1.0


def transition_view(t: dict[str, Any]) -> dict[str, Any]:
    reason, detail = t.get("reason"), t.get("detail")
    ok = isinstance(reason, str | None) and isinstance(detail, str | None)
    return {**t, "summary": state_summary(reason, detail) if ok else ""}


def _checks_view(rt: TargetRuntime) -> dict[str, Any]:
    """Each check's latest result; `stale` when it ended before the current state began. Not
    under `up`: that state is reached only once every check's latest result passed, so those
    results are its evidence, however long before the transition they ran."""
    since = rt.status.since if rt.status.state.value != "up" else None
    out = {}
    for check, result in rt.status.latest.items():
        view = result_view(result)
        view["stale"] = (
            since is not None
            and since > 0
            and result.timestamp + result.duration < since - STALE_SLACK
        )
        out[check.value] = view
    return out


def target_view(
    rt: TargetRuntime, transitions: list[dict[str, Any]], maintenance: Window | None = None
) -> dict[str, Any]:
    st = rt.status
    mine = [t for t in transitions if t.get("target") == rt.name][-20:]
    return {
        "name": rt.name,
        "url": rt.config.safe_url,
        "tls_warning": rt.config.tls_warning,
        "proxy": rt.config.proxy_shown,
        "model": rt.model,
        # what the target is: configured, or found out (`auto`); null while not known
        "server": rt.server,
        "state": st.state.value,
        "since": st.since,
        "reason": st.reason,
        "detail": st.detail,
        "summary": state_summary(st.reason, st.detail),
        "grace_until": st.grace_until,
        "checks": _checks_view(rt),
        "consecutive_failures": {c.value: st.consecutive_failures(c) for c in rt.policy.checks},
        "recent": rt.recent.snapshot(),  # packed; safe_json reads it as a list
        "transitions": [transition_view(t) for t in mine],
        # the exporter's own problems with this target (a key file it cannot read...): ours,
        # not the target's, and never in its state
        "exporter_problems": _problems(rt),
        # an announced maintenance (engine/maintenance.py): the state above stays honest
        "maintenance": maintenance.as_dict() if maintenance is not None else None,
    }


def _problems(rt: TargetRuntime) -> list[dict[str, object]]:
    if not FAULTS.open:
        return []
    key_file = rt.config.api_key_file
    files = (str(key_file),) if key_file is not None else ()
    return [f.as_dict() for f in FAULTS.for_target(rt.name, files)]


def targets_view(monitor: Monitor, now: float) -> dict[str, Any]:
    # Only targets configured now: a removed target's history stays in the file, not here.
    configured = monitor.targets
    transitions = [
        t
        for t in monitor.transitions
        if isinstance(t.get("target"), str) and t["target"] in configured
    ]
    book = monitor.maintenance
    # grouped in one pass: filtering the whole history per target is O(targets x history)
    by_target: dict[Any, list[dict[str, Any]]] = {}
    for t in transitions:
        by_target.setdefault(t.get("target"), []).append(t)
    return {
        "generated_at": now,
        "exporter_problems": [f.as_dict() for f in FAULTS.open.values()],
        "maintenance": [w.as_dict() for w in book.all_active(now, configured)],
        "targets": [
            target_view(rt, by_target.get(rt.name, [])[-20:], book.active(rt.name, now))
            for rt in monitor.targets.values()
        ],
        "transitions": [transition_view(t) for t in transitions[-50:]],
    }
