"""The runtime store: per target, the state machine's status plus the counters the metrics and
the status API show. Probes write into it through `record`; views only read."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.config import Settings, TargetConfig
from exporter.engine.histogram import (
    COMPACT_CHAT_BUCKETS,
    COMPACT_GET_BUCKETS,
    COMPACT_TTFT_BUCKETS,
    DURATION_BUCKETS,
    TTFT_BUCKETS,
    Histogram,
)
from exporter.engine.history import HistoryWriter, read_history
from exporter.engine.journal import log_engine_change, log_transition
from exporter.engine.maintenance import MaintenanceBook
from exporter.engine.offers import learned_server, log_offered
from exporter.engine.policy import policy_for
from exporter.engine.recent import Recent
from exporter.engine.state import (
    Policy,
    State,
    TargetStatus,
    Transition,
    begin_grace,
    end_grace,
    observe,
    offered_policy,
    rejudge,
)
from exporter.engine.thrift import Skip
from exporter.probes.results import VERDICT_CHECKS, Check, ProbeResult
from exporter.util.faults import FAULTS, FaultKind

__all__ = ["Monitor", "TargetRuntime", "TransitionSink"]

log = logging.getLogger("exporter.engine.state")

# where transitions go besides the monitor's own list: the history file, the log, the
# recovery hooks, a /probe round's log
TransitionSink = Callable[[Transition], None]


@dataclass(slots=True)
class TargetRuntime:
    """One target's live numbers (slots: thousands of them, no __dict__ each)."""

    config: TargetConfig
    policy: Policy  # the config's, without the checks the server does not offer
    status: TargetStatus = field(default_factory=TargetStatus)
    discovered_model: str | None = None
    # what an `auto` target was found to be (probes/servers.py), None until known
    detected_server: str | None = None
    probes: Counter[Check] = field(default_factory=Counter)
    failures: Counter[tuple[Check, str]] = field(default_factory=Counter)
    skipped: Counter[tuple[Check, str]] = field(default_factory=Counter)  # by reason
    last_success: dict[Check, float] = field(default_factory=dict)
    last_run: dict[Check, float] = field(default_factory=dict)
    last_phases: dict[Check, dict[str, float]] = field(default_factory=dict)
    durations: dict[Check, Histogram] = field(default_factory=dict)
    ttft: Histogram = field(default_factory=lambda: Histogram(COMPACT_TTFT_BUCKETS))
    last_ttft: float | None = None
    last_tokens_per_second: float | None = None
    tokens: Counter[str] = field(default_factory=Counter)
    transitions_to: Counter[State] = field(default_factory=Counter)
    recent: Recent = field(default_factory=Recent)  # packed; read as dicts by the views
    full: bool = False  # `metrics.detail: full`: the fine bucket layouts
    in_maintenance: bool = False  # seen in a maintenance window (engine/maintenance.py)
    # bumped on every change, so /metrics re-renders only the targets that changed
    version: int = 0
    safe_url: str = field(init=False)  # the URL without credentials, worked out once

    @property
    def name(self) -> str:
        return self.config.name

    def __post_init__(self) -> None:
        self.safe_url = self.config.safe_url  # the config of a runtime never changes
        checks = self.policy.checks
        if (
            Check.CHAT in checks
            and Check.ENGINE in checks
            and self.config.checks.chat.skip_when_busy
        ):
            # from 0, so increase() counts the first skip (engine/thrift.py says why they happen)
            for reason in Skip:
                self.skipped[(Check.CHAT, reason.value)] = 0

    @property
    def model(self) -> str | None:
        return self.config.model or self.discovered_model

    @property
    def server(self) -> str | None:
        """The server profile the probes follow: the configured one, else the one found."""
        return self.config.server if self.config.server != "auto" else self.detected_server

    def duration_histogram(self, check: Check) -> Histogram:
        hist = self.durations.get(check)
        if hist is None:
            layout: tuple[float, ...]
            if self.full:
                layout = DURATION_BUCKETS
            else:
                layout = COMPACT_CHAT_BUCKETS if check is Check.CHAT else COMPACT_GET_BUCKETS
            hist = self.durations[check] = Histogram(layout)
        return hist


class Monitor:
    """All targets' runtimes, the recent transitions, and the sinks that transitions go to
    (by default the history file and the log; more may be appended to `sinks`)."""

    def __init__(
        self,
        settings: Settings,
        history: HistoryWriter | None = None,
        clock: Callable[[], float] = time.time,
        sinks: Sequence[TransitionSink] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.history = history or HistoryWriter(settings.history_file)
        self.transitions: deque[dict[str, Any]] = deque(
            read_history(settings.history_file, settings.history_keep), maxlen=settings.history_keep
        )
        self.targets: dict[str, TargetRuntime] = {}
        self.maintenance = MaintenanceBook()
        self.sinks: list[TransitionSink] = (
            [self.history.append, log_transition] if sinks is None else list(sinks)
        )
        self.apply(settings)

    def apply(self, settings: Settings) -> tuple[set[str], set[str]]:
        """Take a new config; unchanged targets keep their state. Returns (added, removed)."""
        self.settings = settings
        self.maintenance.configure(settings.maintenance)
        wanted = {t.name: t for t in settings.targets}
        removed = {n for n, rt in self.targets.items() if wanted.get(n) != rt.config}
        for name in removed:
            del self.targets[name]
        added = set()
        for name, cfg in wanted.items():
            if name not in self.targets:
                full = settings.metrics.full
                self.targets[name] = TargetRuntime(
                    cfg,
                    policy_for(cfg, settings.default_interval),
                    TargetStatus(since=self.clock()),
                    ttft=Histogram(TTFT_BUCKETS if full else COMPACT_TTFT_BUCKETS),
                    full=full,
                )
                added.add(name)
        return added, removed

    def skipped(self, name: str, check: Check, reason: str) -> None:
        """A probe that was due and not sent (engine/thrift.py): counted, not a result."""
        rt = self.targets.get(name)
        if rt is not None:
            rt.skipped[(check, reason)] += 1
            rt.version += 1

    def record(self, name: str, result: ProbeResult) -> Transition | None:
        """Fold a probe result into the target's numbers and state."""
        rt = self.targets.get(name)
        if rt is None:  # removed by a reload while its probe ran
            return None
        if result.fault is not None:
            self._own_fault(rt, result)
            return None
        if FAULTS.open:
            FAULTS.cleared(f"probe:{name}/{result.check.value}")
        now = self.clock()
        if rt.in_maintenance or not self.maintenance.empty:
            self._watch_maintenance(rt, now)
        check = result.check
        rt.version += 1
        rt.last_phases[check] = result.phases
        rt.probes[check] += 1
        rt.last_run[check] = now
        if check in VERDICT_CHECKS:  # the engine read is bookkeeping: no histogram series
            rt.duration_histogram(check).observe(result.duration)
        if result.success:
            rt.last_success[check] = now
        elif result.reason is not None and result.offered:  # "not offered" is no failure
            rt.failures[(check, result.reason.value)] += 1
        if check is Check.MODELS and result.models and rt.config.model is None:
            rt.discovered_model = result.models[0]
        if result.server is not None and rt.config.server == "auto":
            rt.detected_server = learned_server(rt.name, rt.detected_server, result.server)
        if check is Check.CHAT:
            if result.ttft is not None:
                rt.last_ttft = result.ttft
                if result.success:
                    rt.ttft.observe(result.ttft)
            if result.tokens_per_second is not None:
                rt.last_tokens_per_second = result.tokens_per_second
            if result.prompt_tokens:
                rt.tokens["prompt"] += result.prompt_tokens
            if result.completion_tokens:
                rt.tokens["completion"] += result.completion_tokens
        rt.recent.append(now, check, result.success, result.duration, result.ttft)
        if check is Check.ENGINE:
            log_engine_change(name, rt.status.latest.get(check), result)
        resets = rt.status.engine.resets if rt.status.engine is not None else 0
        rt.status, transition = observe(rt.status, name, result, now, rt.policy)
        policy = offered_policy(rt.policy, rt.status.latest)
        if policy is not rt.policy:
            log_offered(name, rt.policy, policy, result.detail)
            rt.policy = policy
        view = rt.status.engine
        if view is not None and view.resets > resets:
            log.warning("target %s: engine %s", name, view.note)
        if transition is not None:
            self._transitioned(rt, transition)
        return transition

    def _own_fault(self, rt: TargetRuntime, result: ProbeResult) -> None:
        """Our own fault in a probe: counted and shown as ours, never judged (nothing reached
        the target). A secret file's is counted by its reader, under the file. The check did
        run (the loop is not stuck: LLMHeartbeatStale is not the alert for this)."""
        rt.version, rt.last_run[result.check] = rt.version + 1, self.clock()
        kind, what = FaultKind(result.fault or FaultKind.PROBE_BUG), result.detail
        key = f"probe:{rt.name}/{result.check.value}"
        if kind is not FaultKind.SECRET_FILE and FAULTS.raised(kind, key, what, target=rt.name):
            log.warning("target %s: not judged, the exporter's own fault: %s", rt.name, what)

    def _watch_maintenance(self, rt: TargetRuntime, now: float) -> None:
        """Note a target entering maintenance; judge it afresh once its window is over."""
        if self.maintenance.active(rt.name, now) is not None or not rt.in_maintenance:
            rt.in_maintenance = self.maintenance.active(rt.name, now) is not None
        else:
            self.end_maintenance(rt.name, "the maintenance window is over")

    def end_maintenance(self, name: str, detail: str) -> None:
        """Maintenance is over: the target is `unknown` until fresh results judge it."""
        rt = self.targets.get(name)
        if rt is not None:
            rt.in_maintenance, rt.version = False, rt.version + 1
            rt.status, transition = rejudge(
                rt.status, name, self.clock(), "maintenance_ended", detail
            )
            if transition is not None:
                self._transitioned(rt, transition)

    def begin_grace(self, name: str, seconds: float, reason: str) -> None:
        rt = self.targets.get(name)
        if rt is None:
            return
        rt.version += 1
        rt.status, transition = begin_grace(rt.status, name, self.clock(), seconds, reason)
        if transition is not None:
            self._transitioned(rt, transition)

    def end_grace(self, name: str) -> None:
        rt = self.targets.get(name)
        if rt is not None:
            rt.version += 1
            rt.status = end_grace(rt.status)

    def _transitioned(self, rt: TargetRuntime, t: Transition) -> None:
        rt.version += 1
        rt.transitions_to[t.to_state] += 1
        self.transitions.append(t.as_dict())
        for sink in self.sinks:
            sink(t)
