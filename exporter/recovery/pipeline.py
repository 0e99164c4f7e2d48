"""The pipeline one accepted alert goes through: rails -> re-probe -> action -> grace ->
verification -> humans. Each step logs one INFO line; an outcome is noted once (records.py).

When the exporter stops mid-action the command's process group gets SIGTERM, a grace, then
SIGKILL (actions/process.py); the attempt is recorded, logged and notified as `interrupted`,
not as a failed restart. A target a reload removes while its recovery runs ends the same way:
before the action, nothing runs (`interrupted`, no attempt in the rails); after it, the attempt
ends `interrupted` (the restart did run, so it counts in the window, but it never exhausts the
target: only `failed` does). Every attempt that starts gets a result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from exporter.config.recovery import RecoveryConfig, RuleConfig
from exporter.recovery.actions import ActionContext, run_action
from exporter.recovery.dedup import Dedup
from exporter.recovery.intake import Job
from exporter.recovery.notify import Notifier, RecoveryEvent
from exporter.recovery.outcomes import AttemptResult, EventKind
from exporter.recovery.overload import overload_reason
from exporter.recovery.ports import TargetCheck, TargetControl
from exporter.recovery.rails import Attempt, decide, should_exhaust
from exporter.recovery.records import Records, one_line
from exporter.recovery.shared import SharedRails
from exporter.util.net import redact_url

__all__ = ["Pipeline", "describe_action"]

log = logging.getLogger("exporter.recovery")

REMOVED = "the target was removed by a reload before the action ran; nothing was done"
REMOVED_DURING = "the target was removed by a reload while its recovery ran"


def describe_action(rule: RuleConfig) -> str:
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
            return f"http {a.method} {redact_url(a.url).split('?', 1)[0]}"


@dataclass
class Pipeline:
    """Runs jobs; holds no state of its own beyond what it is given."""

    config: RecoveryConfig
    targets: TargetControl
    records: Records
    dedup: Dedup
    notifier: Notifier
    clock: Callable[[], float]
    shared: SharedRails | None = None  # the other replicas' rails (recovery/shared.py)

    def _event(self, kind: EventKind, job: Job, detail: str) -> None:
        self.notifier.notify(
            RecoveryEvent(
                event=str(kind),
                target=job.target,
                rule=job.rule.name,
                action=job.rule.action.type,
                alertname=job.alert.alertname[:200],
                detail=detail[:1000],
                timestamp=self.clock(),
            )
        )

    def exhaust(self, job: Job, reason: str) -> None:
        if not self.records.exhaust(job.target):
            return
        log.error(
            "recovery exhausted for target %s: manual intervention required (%s)",
            job.target,
            one_line(reason),
        )
        self._event(EventKind.EXHAUSTED, job, f"manual intervention required: {reason}")

    async def check(self, target: str) -> TargetCheck:
        try:
            return await self.targets.check_now(target)
        except Exception as exc:  # the core's probe round failing means "not known healthy"
            log.warning("check_now(%s) raised %s", target, type(exc).__name__)
            return TargetCheck(healthy=False, answering=False, state="unknown", detail="error")

    async def handle(self, job: Job) -> None:
        rails = self.config.rails
        record = self.records.record(job.target)
        now = self.clock()
        record.prune(now, rails)
        decision = decide(record, now, rails)
        shared = self.shared if decision.verdict == "go" else None
        if shared is not None:
            decision = await shared.claim(
                job.target, record, rails, job.rule.name, job.rule.action.type, now
            )
            if decision.verdict != "go":
                shared = None
        if decision.verdict != "go":
            if decision.exhaust:
                self.exhaust(job, decision.reason)
            self.dedup.discard(job.key)  # a later repeat of a still-firing alert is looked at
            self.records.note(
                job.target, job.rule, job.alert, AttemptResult(decision.verdict), decision.reason
            )
            return
        record.busy = True
        acted = len(record.attempts)
        try:
            verdict = await self.precheck(job.target)
            if verdict is not None:
                self.dedup.discard(job.key)
                self.records.note(job.target, job.rule, job.alert, *verdict)
                return
            if self.config.dry_run:
                what = f"would run {describe_action(job.rule)}"
                self.records.note(job.target, job.rule, job.alert, AttemptResult.DRY_RUN, what)
                return
            await self.act(job)
        finally:
            record.busy = False
            if shared is not None:
                attempt = record.attempts[-1] if len(record.attempts) > acted else None
                await shared.release(job.target, now, attempt)

    async def precheck(self, target: str) -> tuple[AttemptResult, str] | None:
        """Re-probe: a healthy, starting or merely busy server is not restarted."""
        check = await self.check(target)
        verdict: tuple[AttemptResult, str] | None = None
        if check.maintenance:
            verdict = AttemptResult.SKIPPED_MAINTENANCE, f"not acting: {check.maintenance}"
        elif check.exporter_fault:
            detail = f"the exporter's own fault, not the target's: {check.exporter_fault}"
            verdict = AttemptResult.SKIPPED_EXPORTER_FAULT, detail
        elif check.healthy:
            detail = f"target answers again ({check.detail or check.state})"
            verdict = AttemptResult.SKIPPED_HEALTHY, detail
        elif check.state == "starting":
            detail = "target is starting (loading weights); not restarting"
            verdict = AttemptResult.SKIPPED_STARTING, detail
        elif (reason := overload_reason(check, self.config.rails.overload)) is not None:
            verdict = AttemptResult.SKIPPED_OVERLOADED, reason
        log.info(
            "re-probe of %s: state=%s healthy=%s answering=%s -> %s",
            target,
            check.state,
            check.healthy,
            check.answering,
            verdict[0] if verdict is not None else "restart",
        )
        return verdict

    async def act(self, job: Job) -> None:
        rails = self.config.rails
        record = self.records.record(job.target)
        try:
            url = self.targets.target_url(job.target)
        except KeyError:
            url = None
        if url is None or not self.targets.has_target(job.target):
            self.dedup.discard(job.key)
            self.records.note(job.target, job.rule, job.alert, AttemptResult.INTERRUPTED, REMOVED)
            return
        attempt = self.records.begin(job.target, job.rule)
        n = len(record.in_window(attempt.started_at, rails))
        what = describe_action(job.rule)
        self._event(EventKind.STARTED, job, f"attempt {n} of {rails.max_attempts}: {what}")
        ctx = ActionContext(
            target=job.target,
            target_url=redact_url(url),
            rule=job.rule.name,
            alertname=job.alert.alertname,
            fingerprint=job.alert.fingerprint,
            starts_at=job.alert.starts_at.isoformat(),
            labels=dict(job.alert.labels),
        )
        log.info("action started: target=%s rule=%s: %s", job.target, job.rule.name, what)
        t0 = time.monotonic()
        try:
            result = await run_action(job.rule.action, ctx)
            log.info(
                "action ended: target=%s ok=%s after %.1fs: %s",
                job.target,
                result.ok,
                time.monotonic() - t0,
                one_line(result.detail),
            )
            ok, detail = False, f"action failed: {result.detail}"
            if result.ok:
                self.targets.begin_grace(job.target, rails.grace, f"recovery rule {job.rule.name}")
                try:
                    ok, detail = await self.verify(job.target)
                finally:
                    self.targets.end_grace(job.target)
        except asyncio.CancelledError:
            self.interrupted(job, attempt, "the exporter stopped while the action or its check ran")
            raise
        except Exception as exc:  # a bug must not leave an attempt without a result
            log.exception("recovery of %s failed", job.target)
            self.interrupted(job, attempt, f"recovery stopped by an error ({type(exc).__name__})")
            return
        if not self.targets.has_target(job.target):
            self.interrupted(job, attempt, REMOVED_DURING)
            return
        outcome = AttemptResult.SUCCESS if ok else AttemptResult.FAILED
        self.records.finish(job.target, attempt, outcome)
        self.records.note(job.target, job.rule, job.alert, outcome, detail)
        self._event(EventKind.SUCCEEDED if ok else EventKind.FAILED, job, detail)
        if not ok:
            self.dedup.discard(job.key)
            if should_exhaust(record, self.clock(), rails):
                self.exhaust(job, f"{rails.max_attempts} attempts within {rails.window:g}s failed")

    def interrupted(self, job: Job, attempt: Attempt, detail: str) -> None:
        self.dedup.discard(job.key)
        self.records.finish(job.target, attempt, AttemptResult.INTERRUPTED)
        self.records.note(job.target, job.rule, job.alert, AttemptResult.INTERRUPTED, detail)
        self._event(EventKind.INTERRUPTED, job, detail)

    async def verify(self, target: str) -> tuple[bool, str]:
        """Probe until the target is up or the deadline passes (weights may take minutes)."""
        rails = self.config.rails
        loop = asyncio.get_running_loop()
        deadline = loop.time() + rails.verify_timeout
        last = "no probe yet"
        ok, detail = False, ""
        while loop.time() < deadline:
            await asyncio.sleep(min(rails.verify_interval, max(0.0, deadline - loop.time())))
            if not self.targets.has_target(target):
                return False, REMOVED_DURING  # a reload removed it: nothing left to verify
            check = await self.check(target)
            last = check.detail or check.state
            if check.healthy:
                ok, detail = True, "target is up again"
                break
        if not ok:
            detail = f"not up within {rails.verify_timeout:g}s (last: {last})"
        log.info("verification of %s: %s", target, one_line(detail))
        return ok, detail
