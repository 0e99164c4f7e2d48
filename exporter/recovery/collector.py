"""The recovery metrics, built at scrape time from the service's state (no global registry)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.recovery.outcomes import NotificationResult, WebhookAnomaly, WebhookOutcome
from exporter.recovery.service import RecoveryService

__all__ = ["RecoveryCollector"]


class RecoveryCollector(Collector):
    def __init__(self, service: RecoveryService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        svc = self.service
        stats = svc.stats
        attempts = CounterMetricFamily(
            "llm_recovery_attempts",
            "Recovery decisions and outcomes per target, action type and result.",
            labels=["target", "action", "result"],
        )
        values = dict.fromkeys(svc.preinit_attempt_labels(), 0)
        values.update(stats.attempts)
        for (target, action, result), value in sorted(values.items()):
            attempts.add_metric([target, action, result], value)
        yield attempts

        in_progress = GaugeMetricFamily(
            "llm_recovery_in_progress",
            "1 while a recovery action or its verification runs against the target.",
            labels=["target"],
        )
        exhausted = GaugeMetricFamily(
            "llm_recovery_exhausted",
            "1 when automatic recovery gave up on the target; a human must act.",
            labels=["target"],
        )
        last = GaugeMetricFamily(
            "llm_recovery_last_attempt_timestamp_seconds",
            "Unix time the last recovery action against the target started.",
            labels=["target"],
        )
        for target in svc.metric_targets():
            record = svc.record(target)
            in_progress.add_metric([target], 1.0 if record.busy else 0.0)
            exhausted.add_metric([target], 1.0 if record.exhausted else 0.0)
            ts = stats.last_attempt.get(target)
            if ts is not None:
                last.add_metric([target], ts)
        yield in_progress
        yield exhausted
        yield last

        hooks = CounterMetricFamily(
            "llm_alertmanager_webhooks",
            "Alertmanager webhook requests by outcome.",
            labels=["outcome"],
        )
        for outcome in WebhookOutcome:
            hooks.add_metric([str(outcome)], stats.webhooks.get(str(outcome), 0))
        yield hooks

        odd = CounterMetricFamily(
            "llm_alertmanager_webhook_anomalies",
            "Webhooks accepted with a caveat: version (not 4, read as 4), truncated "
            "(Alertmanager left alerts out).",
            labels=["kind"],
        )
        for kind in WebhookAnomaly:
            odd.add_metric([str(kind)], stats.anomalies.get(str(kind), 0))
        yield odd

        notes = CounterMetricFamily(
            "llm_notifications",
            "Recovery notifications by channel and result.",
            labels=["channel", "result"],
        )
        counts = {(c, r): 0 for c in svc.notifier.channels for r in map(str, NotificationResult)}
        counts.update(stats.notifications)
        for (channel, result), value in sorted(counts.items()):
            notes.add_metric([channel, result], value)
        yield notes
