"""What the receiver remembers: per-target records (persisted through the history file, so an
exporter restart does not reset the rails), the counters behind the metrics, and the recent
decisions the API shows. Every decision is noted here once: counted, kept, logged."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.config.recovery import RecoveryConfig, RuleConfig
from exporter.recovery.history import HistoryFile, record_events
from exporter.recovery.matching import actions_for_target
from exporter.recovery.outcomes import (
    AttemptResult,
    NotificationResult,
    WebhookAnomaly,
    WebhookOutcome,
)
from exporter.recovery.payload import Alert
from exporter.recovery.ports import TargetControl
from exporter.recovery.rails import Attempt, TargetRecord, earliest_next
from exporter.util.text import clean_text

__all__ = ["Records", "Stats", "one_line"]

log = logging.getLogger("exporter.recovery")
_RECENT = 100


def one_line(value: str, limit: int = 500) -> str:
    """A value from an alert, a target or a command, safe inside one log line (a label with a
    newline cannot forge a second line)."""
    return clean_text(value, limit)


@dataclass
class Stats:
    """Counters behind the metrics (the collector is a view of these)."""

    attempts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    webhooks: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    notifications: dict[tuple[str, str], int] = field(default_factory=dict)
    last_attempt: dict[str, float] = field(default_factory=dict)

    def count_attempt(self, target: str, action: str, result: AttemptResult) -> None:
        key = (target, action, str(result))
        self.attempts[key] = self.attempts.get(key, 0) + 1

    def count_webhook(self, outcome: WebhookOutcome) -> None:
        self.webhooks[str(outcome)] = self.webhooks.get(str(outcome), 0) + 1

    def count_anomaly(self, kind: WebhookAnomaly) -> None:
        self.anomalies[str(kind)] = self.anomalies.get(str(kind), 0) + 1

    def count_notification(self, channel: str, result: str) -> None:
        key = (channel, str(NotificationResult(result)))
        self.notifications[key] = self.notifications.get(key, 0) + 1


class Records:
    """The per-target records, their history file, the stats and the recent decisions."""

    def __init__(
        self, config: RecoveryConfig, targets: TargetControl, clock: Callable[[], float]
    ) -> None:
        self.config = config
        self.targets = targets
        self.clock = clock
        self.stats = Stats()
        self.history = HistoryFile(config.history_file)
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self._records: dict[str, TargetRecord] = {}

    async def load(self) -> int:
        """Reload the attempt history and compact the file; the number of targets in it."""
        records = await asyncio.to_thread(self.history.load)
        now = self.clock()
        for target, record in records.items():
            record.prune(now, self.config.rails)
            record.busy = False
            if record.last_attempt_at is not None:
                self.stats.last_attempt[target] = record.last_attempt_at
        self._records = records
        events = [e for t, r in records.items() for e in record_events(t, r)]
        await asyncio.to_thread(self.history.rewrite, events)
        return len(records)

    def record(self, target: str) -> TargetRecord:
        return self._records.setdefault(target, TargetRecord())

    def items(self) -> list[tuple[str, TargetRecord]]:
        return list(self._records.items())

    def known_targets(self) -> list[str]:
        return sorted(set(self.targets.target_names()) | set(self._records))

    def metric_targets(self) -> list[str]:
        """The targets the per-target recovery series describe: those a rule can act on
        (recovery enabled) and those acted on before. Not every monitored target: with
        recovery off, two always-zero series per target were a tenth of /metrics at scale."""
        label = self.config.target_label
        covered = (
            {
                t
                for t in self.targets.target_names()
                if actions_for_target(self.config.rules, t, label)
            }
            if self.config.enabled
            else set()
        )
        return sorted(covered | set(self._records))

    def preinit_attempt_labels(self) -> Iterable[tuple[str, str, str]]:
        if not self.config.enabled:
            return
        label = self.config.target_label
        for target in self.targets.target_names():
            for action in sorted(actions_for_target(self.config.rules, target, label)):
                for result in AttemptResult:
                    yield (target, action, str(result))

    # ---- changes, each persisted -------------------------------------------------------
    def begin(self, target: str, rule: RuleConfig) -> Attempt:
        attempt = Attempt(started_at=self.clock(), rule=rule.name, action=rule.action.type)
        self.record(target).attempts.append(attempt)
        self.stats.last_attempt[target] = attempt.started_at
        self.history.append(
            {
                "event": "attempt",
                "target": target,
                "started_at": attempt.started_at,
                "rule": rule.name,
                "action": rule.action.type,
            }
        )
        return attempt

    def finish(self, target: str, attempt: Attempt, result: AttemptResult) -> None:
        attempt.finished_at = self.clock()
        attempt.result = str(result)
        self.history.append(
            {
                "event": "outcome",
                "target": target,
                "started_at": attempt.started_at,
                "finished_at": attempt.finished_at,
                "result": str(result),
            }
        )

    def exhaust(self, target: str) -> bool:
        """Mark the target exhausted; False if it already was."""
        record = self.record(target)
        if record.exhausted:
            return False
        record.exhausted = True
        record.exhausted_at = self.clock()
        self.history.append({"event": "exhausted", "target": target, "at": record.exhausted_at})
        return True

    def reset(self, target: str, by: str = "operator") -> None:
        """Forget the attempts and the exhausted flag (operator reset or healthy again)."""
        record = self.record(target)
        was = record.exhausted
        record.attempts.clear()
        record.exhausted = False
        record.exhausted_at = None
        self.history.append({"event": "reset", "target": target, "at": self.clock(), "by": by})
        log.info("recovery state of %s reset by %s (was exhausted: %s)", target, by, was)

    def note(
        self, target: str, rule: RuleConfig, alert: Alert, result: AttemptResult, reason: str
    ) -> None:
        """One decision or outcome: counted, kept for the API, logged as one line."""
        self.stats.count_attempt(target, rule.action.type, result)
        self.recent.append(
            {
                "time": self.clock(),
                "target": target,
                "rule": rule.name,
                "action": rule.action.type,
                "alertname": alert.alertname[:200],
                "result": str(result),
                "reason": reason[:500],
            }
        )
        bad = result in (AttemptResult.FAILED, AttemptResult.INTERRUPTED)
        log.log(
            logging.WARNING if bad else logging.INFO,
            "recovery %s: target=%s rule=%s action=%s: %s",
            result,
            target,
            rule.name,
            rule.action.type,
            one_line(reason),
        )

    # ---- the API's view ----------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock()
        rails = self.config.rails
        out: dict[str, Any] = {}
        for target in self.known_targets():
            record = self.record(target)
            last = record.attempts[-1] if record.attempts else None
            nxt = earliest_next(record, now, rails)
            out[target] = {
                "in_progress": record.busy,
                "exhausted": record.exhausted,
                "exhausted_at": record.exhausted_at,
                "attempts_in_window": len(record.in_window(now, rails)),
                "max_attempts": rails.max_attempts,
                "next_allowed_at": nxt if nxt is not None and nxt > now else None,
                "last_attempt": None
                if last is None
                else {
                    "started_at": last.started_at,
                    "finished_at": last.finished_at,
                    "rule": last.rule,
                    "action": last.action,
                    "result": last.result,
                },
            }
        return {
            "enabled": self.config.enabled,
            "dry_run": self.config.dry_run,
            "targets": out,
            "recent": list(self.recent),
        }
