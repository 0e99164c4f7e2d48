"""RecoveryService: the receiver's parts put together, and the background tasks they run.

    intake.py    token, which alerts of a webhook start a job
    pipeline.py  rails -> re-probe -> action -> grace -> verification -> humans
    records.py   per-target records (persisted), counters, recent decisions
    api.py       its HTTP routes; collector.py its metrics (both mounted by runtime.py)

The HTTP side only parses and authenticates; everything that takes time runs here in
background tasks, so Alertmanager gets its 2xx fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from exporter.config.recovery import RailsConfig, RecoveryConfig
from exporter.recovery.dedup import Dedup
from exporter.recovery.history import HistoryFile
from exporter.recovery.intake import Intake, receiver_token, sort_alerts
from exporter.recovery.lease import LeaseStore
from exporter.recovery.notify import Notifier
from exporter.recovery.payload import WebhookMessage
from exporter.recovery.pipeline import Pipeline
from exporter.recovery.ports import TargetControl
from exporter.recovery.rails import TargetRecord
from exporter.recovery.records import Records, Stats
from exporter.recovery.shared import OWNER, FileStore, SharedRails

__all__ = ["RecoveryService", "Stats"]

log = logging.getLogger("exporter.recovery")

_WATCH, _JOB, _NOTIFY = "recovery-watch", "recovery-job", "recovery-notify"
_NOTIFY_GRACE = 10.0
"""How long stop() lets notifications already under way (an `interrupted` one) finish."""


class RecoveryService:
    """The recovery receiver. Build it, mount `api.build_routes(svc)` and register
    `collector.RecoveryCollector(svc)`, `await start()`, `await stop()`."""

    def __init__(
        self,
        config: RecoveryConfig,
        targets: TargetControl,
        *,
        clock: Callable[[], float] = time.time,
        listen_host: str | None = None,
    ) -> None:
        self.config = config
        self.targets = targets
        self.clock = clock
        self.token = receiver_token(config, listen_host)
        if self.token is None and config.enabled and config.rules:
            log.warning("recovery receiver runs WITHOUT authentication (loopback only)")
        self.records = Records(config, targets, clock)
        self.stats: Stats = self.records.stats
        self.dedup = Dedup(config.dedup_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self.notifier = Notifier(
            config.notifications,
            spawn=lambda coro: self._spawn(coro, _NOTIFY),
            count=self.stats.count_notification,
        )
        self.pipeline = Pipeline(
            config,
            targets,
            self.records,
            self.dedup,
            self.notifier,
            clock,
            shared_rails(config.rails),
        )

    @property
    def history(self) -> HistoryFile:
        return self.records.history

    @property
    def recent(self) -> deque[dict[str, Any]]:
        return self.records.recent

    @property
    def started(self) -> bool:
        return self._started

    # ---- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Reload the attempt history (before any alert is accepted) and start the watcher."""
        if self._started:
            return
        known = await self.records.load()
        self._started = True
        if self.config.enabled and self.config.rules and self.config.history_file is None:
            log.warning(
                "recovery.history_file is not set: attempt counts are lost when the exporter "
                "restarts (set it to keep the rails across restarts)"
            )
        if self.config.enabled:
            self._spawn(self._watch_exhausted(), _WATCH)
        log.info(
            "recovery receiver started (enabled=%s, dry_run=%s, %d rules, %d targets in history)",
            self.config.enabled,
            self.config.dry_run,
            len(self.config.rules),
            known,
        )

    async def stop(self) -> None:
        """End the jobs (a running command gets SIGTERM, a grace, then SIGKILL; the attempt
        is recorded and notified as interrupted), let those notifications go out within
        `_NOTIFY_GRACE`, then cancel what is left."""
        self._started = False
        await self._cancel([t for t in self._tasks if t.get_name() != _NOTIFY])
        notes = [t for t in self._tasks if t.get_name() == _NOTIFY]
        if notes:
            await asyncio.wait(notes, timeout=_NOTIFY_GRACE)
        await self._cancel(list(self._tasks))
        self._tasks.clear()
        await asyncio.to_thread(self.records.history.close)  # what is queued reaches the disk

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
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
            while any(t.get_name() != _WATCH for t in self._tasks):
                await asyncio.sleep(0.01)

    # ---- intake --------------------------------------------------------------------------
    def accept(self, message: WebhookMessage) -> Intake:
        """Sort a webhook's alerts by their own status; start handling new firing ones."""
        intake = sort_alerts(message, self.config, self.targets, self.dedup)
        for job in intake.jobs:
            self._spawn(self.pipeline.handle(job), _JOB)
        return intake

    # ---- views and operator actions --------------------------------------------------------
    def record(self, target: str) -> TargetRecord:
        return self.records.record(target)

    def known_targets(self) -> list[str]:
        return self.records.known_targets()

    def metric_targets(self) -> list[str]:
        return self.records.metric_targets()

    def preinit_attempt_labels(self) -> Iterable[tuple[str, str, str]]:
        return self.records.preinit_attempt_labels()

    def status(self) -> dict[str, Any]:
        return self.records.status()

    def reset(self, target: str, by: str = "operator") -> None:
        self.records.reset(target, by)

    # ---- exhaustion ----------------------------------------------------------------------
    async def _watch_exhausted(self) -> None:
        while True:
            await asyncio.sleep(self.config.rails.exhausted_check_interval)
            self.check_exhausted()

    def check_exhausted(self) -> None:
        """An exhausted target that is up again gets automatic recovery back."""
        for target, record in self.records.items():
            if not record.exhausted or record.busy or not self.targets.has_target(target):
                continue
            try:
                state = self.targets.state(target)
            except Exception:  # the core's adapter failing must not end the watcher
                continue
            if state == "up":
                self.reset(target, by="healthy")


def shared_rails(rails: RailsConfig) -> SharedRails | None:
    """The ledger the replicas' receivers share, if one is configured (docs/ha.md)."""
    if rails.shared_file is not None:
        return SharedRails(FileStore(rails.shared_file))
    if rails.shared_lease is not None:
        return SharedRails(LeaseStore(rails.shared_lease, OWNER))
    return None
