"""Intake: who may talk to the receiver, and which of a webhook's alerts start a recovery.

Pure of I/O: the HTTP side (api.py) parses and authenticates, this sorts the alerts by their
own status, drops repeats of an episode already handled, and matches the rest to a rule."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass

from exporter.config.recovery import RecoveryConfig, RuleConfig
from exporter.errors import ConfigError, RecoveryConfigError
from exporter.recovery.dedup import Dedup
from exporter.recovery.matching import match_rule
from exporter.recovery.payload import Alert, WebhookMessage
from exporter.recovery.ports import TargetControl
from exporter.recovery.records import one_line
from exporter.util.net import is_loopback
from exporter.util.secrets import SecretReader, read_secret

__all__ = ["Job", "receiver_token", "sort_alerts"]

log = logging.getLogger("exporter.recovery")


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


def sort_alerts(
    message: WebhookMessage, config: RecoveryConfig, targets: TargetControl, dedup: Dedup
) -> tuple[dict[str, int], list[Job]]:
    """A summary (accepted, duplicate, resolved, unmatched) and the jobs to start."""
    summary = {"accepted": 0, "duplicate": 0, "resolved": 0, "unmatched": 0}
    jobs: list[Job] = []
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
            log.info(
                "alert %s ignored: label %r names no configured target",
                one_line(alert.alertname, 100),
                one_line(label, 100),
            )
            summary["unmatched"] += 1
            continue
        rule = match_rule(config.rules, alert.labels, target, label)
        if rule is None:
            summary["unmatched"] += 1
            continue
        dedup.add(key)
        summary["accepted"] += 1
        log.info(
            "alert %s for target %s accepted by rule %s",
            one_line(alert.alertname, 100),
            target,
            rule.name,
        )
        jobs.append(Job(alert, rule, target, key))
    return summary, jobs
