"""RecoveryService: alert -> rails -> re-probe -> action -> grace -> verification -> humans.

The HTTP side (api.py) only parses and authenticates; everything that takes time runs here in
background tasks, so Alertmanager gets its 2xx fast. State lives in per-target records that are
persisted through the history file, so an exporter restart does not reset the rails.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry
from starlette.routing import Route

from exporter.config.recovery import RecoveryConfig, RuleConfig
from exporter.recovery.actions import ActionContext, run_action
from exporter.recovery.collector import ATTEMPT_RESULTS, RecoveryCollector
from exporter.recovery.dedup import Dedup
from exporter.recovery.history import HistoryFile, record_events
from exporter.recovery.matching import actions_for_target, match_rule
from exporter.recovery.notify import Notifier, RecoveryEvent
from exporter.recovery.overload import overload_reason
from exporter.recovery.payload import Alert, WebhookMessage
from exporter.recovery.ports import TargetCheck, TargetControl
from exporter.recovery.rails import Attempt, TargetRecord, decide, earliest_next, should_exhaust
from exporter.recovery.secrets import RecoveryConfigError, read_secret

__all__ = ["RecoveryService", "Stats"]

log = logging.getLogger("exporter.recovery")
_RECENT = 100


@dataclass
class Stats:
    """Counters behind the metrics (the collector is a view of these)."""

    attempts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    webhooks: dict[str, int] = field(default_factory=dict)
    notifications: dict[tuple[str, str], int] = field(default_factory=dict)
    last_attempt: dict[str, float] = field(default_factory=dict)

    def count_attempt(self, target: str, action: str, result: str) -> None:
        key = (target, action, result)
        self.attempts[key] = self.attempts.get(key, 0) + 1

    def count_webhook(self, outcome: str) -> None:
        self.webhooks[outcome] = self.webhooks.get(outcome, 0) + 1

    def count_notification(self, channel: str, result: str) -> None:
        key = (channel, result)
        self.notifications[key] = self.notifications.get(key, 0) + 1


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RecoveryService:
    """The recovery receiver. Build it, mount `routes()`, `await start()`, `await stop()`."""

    def __init__(
        self,
        config: RecoveryConfig,
        targets: TargetControl,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], float] = time.time,
        listen_host: str | None = None,
    ) -> None:
        self.config = config
        self.targets = targets
        self.clock = clock
        self.stats = Stats()
        self.token = self._resolve_token(listen_host)
        self.history = HistoryFile(config.history_file)
        self.dedup = Dedup(config.dedup_size)
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT)
        self._records: dict[str, TargetRecord] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self.notifier = Notifier(
            config.notifications, spawn=self._spawn, count=self.stats.count_notification
        )
        registry.register(RecoveryCollector(self))

    # ----------------------------------------------------------------- setup
    def _resolve_token(self, listen_host: str | None) -> str | None:
        cfg = self.config
        token = read_secret(cfg.auth.token_file, cfg.auth.token_env, "recovery.auth")
        if token is not None or not cfg.enabled or not cfg.rules:
            return token
        if not cfg.auth.allow_unauthenticated_loopback:
            raise RecoveryConfigError(
                "recovery.rules are configured but the receiver has no bearer token: set "
                "recovery.auth.token_file or recovery.auth.token_env (or, for a receiver bound "
                "to loopback only, recovery.auth.allow_unauthenticated_loopback: true)"
            )
        if not _is_loopback(listen_host):
            raise RecoveryConfigError(
                "recovery.auth.allow_unauthenticated_loopback is set but the exporter listens "
                f"on {listen_host or 'an unknown address'}, not loopback: set a bearer token"
            )
        log.warning("recovery receiver runs WITHOUT authentication (loopback only)")
        return None

    async def start(self) -> None:
        """Reload the attempt history (before any alert is accepted) and start the watcher."""
        if self._started:
            return
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
        self._started = True
        if self.config.enabled and self.config.rules and self.config.history_file is None:
            log.warning(
                "recovery.history_file is not set: attempt counts are lost when the exporter "
                "restarts (set it to keep the rails across restarts)"
            )
        if self.config.enabled:
            self._spawn(self._watch_exhausted(), name="recovery-watch")
        log.info(
            "recovery receiver started (enabled=%s, dry_run=%s, %d rules, %d targets in history)",
            self.config.enabled,
            self.config.dry_run,
            len(self.config.rules),
            len(records),
        )

    async def stop(self) -> None:
        """Cancel and await every background task (actions, verifications, notifications)."""
        self._started = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    @property
    def started(self) -> bool:
        return self._started

    def routes(self) -> list[Route]:
        from exporter.recovery.api import build_routes

        return build_routes(self)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str | None = None) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recovery task failed: %r", task.exception())

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no background work except the watcher is left (for tests and shutdown)."""
        async with asyncio.timeout(timeout):
            while any(t.get_name() != "recovery-watch" for t in self._tasks):
                await asyncio.sleep(0.01)

    # ----------------------------------------------------------------- state views
    def record(self, target: str) -> TargetRecord:
        return self._records.setdefault(target, TargetRecord())

    def known_targets(self) -> list[str]:
        return sorted(set(self.targets.target_names()) | set(self._records))

    def preinit_attempt_labels(self) -> Iterable[tuple[str, str, str]]:
        label = self.config.target_label
        for target in self.targets.target_names():
            for action in sorted(actions_for_target(self.config.rules, target, label)):
                for result in ATTEMPT_RESULTS:
                    yield (target, action, result)

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

    # ----------------------------------------------------------------- intake
    def accept(self, message: WebhookMessage) -> dict[str, int]:
        """Sort a webhook's alerts by their own status; start handling new firing ones."""
        summary = {"accepted": 0, "duplicate": 0, "resolved": 0, "unmatched": 0}
        label = self.config.target_label
        for alert in message.alerts:
            if alert.status != "firing":
                summary["resolved"] += 1
                continue
            key = alert.dedup_key()
            if key in self.dedup:
                summary["duplicate"] += 1
                continue
            target = alert.labels.get(label, "")
            if not target or not self.targets.has_target(target):
                log.info(
                    "alert %s ignored: label %r names no configured target",
                    alert.alertname[:100],
                    label,
                )
                summary["unmatched"] += 1
                continue
            rule = match_rule(self.config.rules, alert.labels, target, label)
            if rule is None:
                summary["unmatched"] += 1
                continue
            self.dedup.add(key)
            summary["accepted"] += 1
            self._spawn(self._handle(alert, rule, target, key))
        return summary

    # ----------------------------------------------------------------- handling
    def _note(self, target: str, rule: RuleConfig, alert: Alert, result: str, reason: str) -> None:
        self.stats.count_attempt(target, rule.action.type, result)
        self.recent.append(
            {
                "time": self.clock(),
                "target": target,
                "rule": rule.name,
                "action": rule.action.type,
                "alertname": alert.alertname[:200],
                "result": result,
                "reason": reason[:500],
            }
        )
        level = logging.WARNING if result == "failed" else logging.INFO
        log.log(
            level,
            "recovery %s: target=%s rule=%s action=%s: %s",
            result,
            target,
            rule.name,
            rule.action.type,
            reason[:500],
        )

    def _event(self, kind: str, target: str, rule: RuleConfig, alert: Alert, detail: str) -> None:
        self.notifier.notify(
            RecoveryEvent(
                event=kind,
                target=target,
                rule=rule.name,
                action=rule.action.type,
                alertname=alert.alertname[:200],
                detail=detail[:1000],
                timestamp=self.clock(),
            )
        )

    def _exhaust(self, target: str, rule: RuleConfig, alert: Alert, reason: str) -> None:
        record = self.record(target)
        if record.exhausted:
            return
        record.exhausted = True
        record.exhausted_at = self.clock()
        self.history.append({"event": "exhausted", "target": target, "at": record.exhausted_at})
        log.error(
            "recovery exhausted for target %s: manual intervention required (%s)", target, reason
        )
        self._event("exhausted", target, rule, alert, f"manual intervention required: {reason}")

    async def _check(self, target: str) -> TargetCheck:
        try:
            return await self.targets.check_now(target)
        except Exception as exc:  # a failing probe round means "not known healthy"
            log.warning("check_now(%s) raised %s", target, type(exc).__name__)
            return TargetCheck(healthy=False, answering=False, state="unknown", detail="error")

    async def _handle(self, alert: Alert, rule: RuleConfig, target: str, key: Hashable) -> None:
        rails = self.config.rails
        record = self.record(target)
        now = self.clock()
        record.prune(now, rails)
        decision = decide(record, now, rails)
        if decision.verdict != "go":
            if decision.exhaust:
                self._exhaust(target, rule, alert, decision.reason)
            self.dedup.discard(key)  # a later repeat of a still-firing alert is looked at again
            self._note(target, rule, alert, decision.verdict, decision.reason)
            return
        record.busy = True
        try:
            verdict = await self._precheck(target)
            if verdict is not None:
                self.dedup.discard(key)
                self._note(target, rule, alert, *verdict)
                return
            if self.config.dry_run:
                self._note(target, rule, alert, "dry_run", f"would run {_describe_action(rule)}")
                return
            await self._act(alert, rule, target, key)
        finally:
            record.busy = False

    async def _precheck(self, target: str) -> tuple[str, str] | None:
        """Re-probe: a healthy, starting or merely busy server is not restarted."""
        check = await self._check(target)
        if check.healthy:
            return "skipped_healthy", f"target answers again ({check.detail or check.state})"
        if check.state == "starting":
            return "skipped_starting", "target is starting (loading weights); not restarting"
        reason = overload_reason(check, self.config.rails.overload)
        if reason is not None:
            return "skipped_overloaded", reason
        return None

    async def _act(self, alert: Alert, rule: RuleConfig, target: str, key: Hashable) -> None:
        rails = self.config.rails
        record = self.record(target)
        attempt = Attempt(started_at=self.clock(), rule=rule.name, action=rule.action.type)
        record.attempts.append(attempt)
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
        n = len(record.in_window(attempt.started_at, rails))
        self._event(
            "started",
            target,
            rule,
            alert,
            f"attempt {n} of {rails.max_attempts}: {_describe_action(rule)}",
        )
        ctx = ActionContext(
            target=target,
            target_url=_strip_userinfo(self.targets.target_url(target)),
            rule=rule.name,
            alertname=alert.alertname,
            fingerprint=alert.fingerprint,
            starts_at=alert.starts_at.isoformat(),
            labels=dict(alert.labels),
        )
        ok = False
        detail = "cancelled"
        try:
            result = await run_action(rule.action, ctx)
            if result.ok:
                self.targets.begin_grace(target, rails.grace, f"recovery rule {rule.name}")
                try:
                    ok, detail = await self._verify(target)
                finally:
                    self.targets.end_grace(target)
            else:
                detail = f"action failed: {result.detail}"
        finally:
            attempt.finished_at = self.clock()
            attempt.result = "success" if ok else "failed"
            self.history.append(
                {
                    "event": "outcome",
                    "target": target,
                    "started_at": attempt.started_at,
                    "finished_at": attempt.finished_at,
                    "result": attempt.result,
                }
            )
        self._note(target, rule, alert, attempt.result, detail)
        self._event("succeeded" if ok else "failed", target, rule, alert, detail)
        if not ok:
            self.dedup.discard(key)
            if should_exhaust(record, self.clock(), rails):
                self._exhaust(
                    target,
                    rule,
                    alert,
                    f"{rails.max_attempts} attempts within {rails.window:g}s failed",
                )

    async def _verify(self, target: str) -> tuple[bool, str]:
        """Probe until the target is up or the deadline passes (weights may take minutes)."""
        rails = self.config.rails
        loop = asyncio.get_running_loop()
        deadline = loop.time() + rails.verify_timeout
        last = "no probe yet"
        while loop.time() < deadline:
            await asyncio.sleep(min(rails.verify_interval, max(0.0, deadline - loop.time())))
            check = await self._check(target)
            last = check.detail or check.state
            if check.healthy:
                return True, "target is up again"
        return False, f"not up within {rails.verify_timeout:g}s (last: {last})"

    # ----------------------------------------------------------------- exhaustion
    def reset(self, target: str, by: str = "operator") -> None:
        """Forget the attempts and the exhausted flag (operator reset or healthy again)."""
        record = self.record(target)
        was = record.exhausted
        record.attempts.clear()
        record.exhausted = False
        record.exhausted_at = None
        self.history.append({"event": "reset", "target": target, "at": self.clock(), "by": by})
        log.info("recovery state of %s reset by %s (was exhausted: %s)", target, by, was)

    async def _watch_exhausted(self) -> None:
        while True:
            await asyncio.sleep(self.config.rails.exhausted_check_interval)
            self.check_exhausted()

    def check_exhausted(self) -> None:
        """An exhausted target that is up again gets automatic recovery back."""
        for target, record in list(self._records.items()):
            if not record.exhausted or record.busy or not self.targets.has_target(target):
                continue
            try:
                state = self.targets.state(target)
            except Exception:  # the adapter must not break the watcher
                continue
            if state == "up":
                self.reset(target, by="healthy")


def _describe_action(rule: RuleConfig) -> str:
    a = rule.action
    match a.type:
        case "command":
            return f"command {a.argv[0]}"
        case "systemd":
            return f"systemctl restart {a.unit}"
        case "docker":
            return f"docker restart {a.container}"
        case "kubernetes":
            return f"rollout restart deployment {a.deployment}"
        case _:
            return f"http {a.method} {_strip_userinfo(a.url).split('?', 1)[0]}"
