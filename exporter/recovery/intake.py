"""Intake: who may talk to the receiver, and which of a webhook's alerts start a recovery.

Pure of I/O: the HTTP side (api.py) parses and authenticates, this sorts the alerts by their
own status, drops repeats of an episode already handled, and matches the rest to a rule."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from exporter.config.recovery import RecoveryConfig, RuleConfig
from exporter.errors import ConfigError, RecoveryConfigError
from exporter.recovery.dedup import Dedup
from exporter.recovery.matching import match_rule
from exporter.recovery.outcomes import WebhookAnomaly
from exporter.recovery.payload import Alert, WebhookMessage
from exporter.recovery.ports import TargetControl
from exporter.recovery.records import one_line
from exporter.util.net import is_loopback
from exporter.util.secrets import SecretReader, read_secret

__all__ = ["Intake", "Job", "anomalies", "receiver_token", "sort_alerts"]


@dataclass(frozen=True)
class Job:
    """A firing alert that a rule accepted: what the pipeline runs."""

    alert: Alert
    rule: RuleConfig
    target: str
    key: Hashable


def receiver_token(
    config: RecoveryConfig, listen_host: str | None, read: SecretReader = read_secret
) -> str | None:
    """The webhook's bearer token; RecoveryConfigError when rules could run unauthenticated
    from anywhere but loopback (also called by `check-config`, so it rejects what `run`
    rejects; `read` lets it check a token source without reading it)."""
    try:
        token = read(config.auth.token_file, config.auth.token_env, "recovery.auth")
    except RecoveryConfigError:
        raise
    except ConfigError as exc:
        raise RecoveryConfigError(str(exc)) from None
    if token is not None or not config.enabled or not config.rules:
        return token
    if not config.auth.allow_unauthenticated_loopback:
        raise RecoveryConfigError(
            "recovery.rules are configured but the receiver has no bearer token: set "
            "recovery.auth.token_file or recovery.auth.token_env (or, for a receiver bound "
            "to loopback only, recovery.auth.allow_unauthenticated_loopback: true)"
        )
    if not is_loopback(listen_host):
        raise RecoveryConfigError(
            "recovery.auth.allow_unauthenticated_loopback is set but the exporter listens "
            f"on {listen_host or 'an unknown address'}, not loopback: set a bearer token"
        )
    return None


@dataclass
class Intake:
    """What a webhook's alerts came to: the counts, the jobs, and a few unmatched alerts by
    name (for the one log line of the delivery)."""

    summary: dict[str, int]
    jobs: list[Job]
    unmatched: list[str]

    def describe(self, limit: int = 3) -> str:
        """The jobs and a few unmatched alerts, for the delivery's log line (bounded)."""
        parts = [
            f"{one_line(j.alert.alertname, 100)} -> {j.target} by rule {j.rule.name}"
            for j in self.jobs[:limit]
        ]
        if len(self.jobs) > limit:
            parts.append(f"+{len(self.jobs) - limit} more accepted")
        if self.unmatched:
            parts.append("unmatched e.g. " + ", ".join(self.unmatched))
        return "".join(f"; {p}" for p in parts)


def sort_alerts(
    message: WebhookMessage, config: RecoveryConfig, targets: TargetControl, dedup: Dedup
) -> Intake:
    """A summary (accepted, duplicate, resolved, unmatched) and the jobs to start. Nothing
    is logged per alert: a webhook of 7,800 alerts is one line (api.py), and each job logs
    its own steps."""
    summary = {"accepted": 0, "duplicate": 0, "resolved": 0, "unmatched": 0}
    jobs: list[Job] = []
    unmatched: list[str] = []
    label = config.target_label
    for alert in message.alerts:
        if alert.status != "firing":
            summary["resolved"] += 1
            continue
        key = alert.dedup_key()
        if key in dedup:
            summary["duplicate"] += 1
            continue
        target = alert.labels.get(label, "")
        if not target or not targets.has_target(target):
            summary["unmatched"] += 1
            if len(unmatched) < 3:
                unmatched.append(
                    f"{one_line(alert.alertname, 100)} ({label}={one_line(target, 100)!r}: "
                    "no such target)"
                )
            continue
        rule = match_rule(config.rules, alert.labels, target, label)
        if rule is None:
            summary["unmatched"] += 1
            if len(unmatched) < 3:
                unmatched.append(f"{one_line(alert.alertname, 100)} (no rule for {target})")
            continue
        dedup.add(key)
        summary["accepted"] += 1
        jobs.append(Job(alert, rule, target, key))
    return Intake(summary, jobs, unmatched)


def anomalies(message: WebhookMessage) -> list[tuple[WebhookAnomaly, str]]:
    """What the receiver did with what it does not expect: another payload version (read as
    version 4: the fields it acts on are validated), alerts Alertmanager left out."""
    out: list[tuple[WebhookAnomaly, str]] = []
    if message.version != "4":
        out.append(
            (
                WebhookAnomaly.VERSION,
                f"payload version {one_line(message.version, 20)!r} is not 4: read as version 4",
            )
        )
    if message.truncated_alerts:
        out.append(
            (
                WebhookAnomaly.TRUNCATED,
                f"Alertmanager truncated {message.truncated_alerts} alert(s) (its max_alerts): "
                "those were not seen; the ones received were handled",
            )
        )
    return out
