"""The recovery vocabulary: what an attempt came to, what a webhook request was, what a
notification did, what humans are told. The values are metric labels and config values:
they never change."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AttemptResult", "EventKind", "NotificationResult", "WebhookAnomaly", "WebhookOutcome"]


class AttemptResult(StrEnum):
    """`result` of llm_recovery_attempts_total: a decision (skipped_*, dry_run) or an outcome."""

    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the exporter stopped while the action or its check ran
    SKIPPED_HEALTHY = "skipped_healthy"
    SKIPPED_OVERLOADED = "skipped_overloaded"
    SKIPPED_COOLDOWN = "skipped_cooldown"
    SKIPPED_EXHAUSTED = "skipped_exhausted"
    SKIPPED_IN_PROGRESS = "skipped_in_progress"
    SKIPPED_STARTING = "skipped_starting"
    SKIPPED_EXPORTER_FAULT = "skipped_exporter_fault"  # our own fault: the round said nothing
    SKIPPED_MAINTENANCE = "skipped_maintenance"  # announced maintenance: people are at work
    DRY_RUN = "dry_run"


class WebhookOutcome(StrEnum):
    """`outcome` of llm_alertmanager_webhooks_total."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNAUTHORIZED = "unauthorized"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    DISABLED = "disabled"


class WebhookAnomaly(StrEnum):
    """`kind` of llm_alertmanager_webhook_anomalies_total: a payload accepted with a caveat."""

    VERSION = "version"  # not version "4": read as version 4 (the fields we use are checked)
    TRUNCATED = "truncated"  # Alertmanager left alerts out (truncatedAlerts > 0)


class NotificationResult(StrEnum):
    """`result` of llm_notifications_total."""

    SENT = "sent"
    FAILED = "failed"


class EventKind(StrEnum):
    """What humans are told (`recovery.notifications.events`)."""

    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    EXHAUSTED = "exhausted"
