"""The collector loop: one asyncio task per target and check, probing every interval (start
to start) with jitter, a global bound on concurrent probes, and a lock so a check never
overlaps itself (except the probes that confirm a timeout, which run together). A slow target only delays itself. When a check
recovers, the others run again at once, and a probe still waiting since before the recovery
is abandoned: its answer would describe the outage."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable

from exporter.engine.cadence import confirmations, next_delay
from exporter.engine.monitor import Monitor
from exporter.engine.pauses import PauseWatch
from exporter.engine.rounds import run_round
from exporter.probes import PROBES, ProbeContext
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.probes.transport import Transport

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


class _Alarm:
    """A sleep that `set()` cuts short: one future and one timer, where `asyncio.timeout`
    around `Event.wait` costs a cancellation (an exception raised and caught) on every
    ordinary wake-up, thousands of times a second. A `set()` while not sleeping is dropped:
    the check is probing then, and its own result is the fresh one."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def arm(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """The future `set()` resolves until the next `arm()` (the caller adds the timer: a
        sleep needs no coroutine object of its own, which would outlive young collections)."""
        waiter = self._waiter = loop.create_future()
        return waiter


def _wake_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Scheduler:
    """Runs the probes of every target on their own cadence and feeds the results to the monitor."""

    def __init__(
        self,
        monitor: Monitor,
        client: Transport,
        max_concurrency: int = 64,
        pauses: PauseWatch | None = None,
    ) -> None:
        self.monitor = monitor
        self.client = client
        self.pauses = pauses
        self._sem = asyncio.Semaphore(max_concurrency)
        self._tasks: dict[tuple[str, Check], asyncio.Task[None]] = {}
        self._locks: dict[tuple[str, Check], asyncio.Lock] = {}
        self._wake: dict[tuple[str, Check], _Alarm] = {}
        # probes in flight: when each began, and the scope that abandons it
        self._inflight: dict[tuple[str, Check], dict[int, tuple[float, asyncio.Timeout]]] = {}
        self._rng = random.Random()
        self.started = False

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.started = True
        self.sync()

    def sync(self) -> None:
        """Start loops for targets without one; stop loops of targets that are gone or changed."""
        wanted = {
            (name, check) for name, rt in self.monitor.targets.items() for check in rt.policy.checks
        }
        for key in list(self._tasks):
            task = self._tasks[key]
            rt = self.monitor.targets.get(key[0])
            stale = key not in wanted or getattr(task, "config", None) is not (rt and rt.config)
            if stale or task.done():
                task.cancel()
                del self._tasks[key]
        for key in sorted(wanted):
            if key not in self._tasks:
                task = asyncio.create_task(self._loop(*key), name=f"probe:{key[0]}:{key[1]}")
                task.config = self.monitor.targets[key[0]].config  # type: ignore[attr-defined]
                self._tasks[key] = task

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self.started = False

    # ---- probing ---------------------------------------------------------------------------
    async def probe(self, name: str, check: Check, copies: int = 1) -> ProbeResult | None:
        """One probe of one check (or `copies` at once, to confirm a timeout), never
        overlapping another round of the same target and check; results are recorded as they
        come. Returns the last one; None when the target is gone or the probe was abandoned."""
        rt = self.monitor.targets.get(name)
        if rt is None:
            return None
        lock = self._locks.get((name, check))
        if lock is None:
            lock = self._locks[(name, check)] = asyncio.Lock()
        async with lock:
            if copies <= 1:
                return await self._run(name, check)
            results = await asyncio.gather(*(self._run(name, check) for _ in range(copies)))
        return next((r for r in reversed(results) if r is not None), None)

    async def _run(self, name: str, check: Check, again: bool = False) -> ProbeResult | None:
        rt = self.monitor.targets.get(name)
        if rt is None:
            return None
        key = (name, check)
        async with self._sem:
            cfg = rt.config
            spec = getattr(cfg.checks, check.value)
            ctx = ProbeContext(self.client, cfg, spec.timeout, rt.model)
            inflight = self._inflight.setdefault(key, {})
            scope = asyncio.timeout(None)
            inflight[id(scope)] = (time.time(), scope)
            try:
                async with scope:
                    result = await PROBES[check](ctx)
            except TimeoutError:
                return None  # abandoned by _react: a fresh probe follows at once
            finally:
                del inflight[id(scope)]
                if not inflight:
                    self._inflight.pop(key, None)
        if not again and self._held(name, result):
            return await self._run(name, check, again=True)
        self.monitor.record(name, result)
        self._react(name, check, result)
        return result

    def _held(self, name: str, result: ProbeResult) -> bool:
        """A timeout while the exporter's own loop was held (pauses.py): the deadline may have
        fired on an answer the loop could not read. Not counted; asked again at once, once."""
        if result.reason is not Reason.TIMEOUT or self.pauses is None:
            return False
        paused = self.pauses.excuses(result.timestamp, result.duration)
        if not paused:
            return False
        self.pauses.retries += 1
        log.debug(
            "probe %s/%s timed out while the exporter itself was held for %.2fs of its %.2fs: "
            "not counted, asking again",
            name,
            result.check.value,
            paused,
            result.duration,
        )
        return True

    def _react(self, name: str, check: Check, result: ProbeResult) -> None:
        """Wake the checks whose word is needed now."""
        rt = self.monitor.targets.get(name)
        if rt is None:
            return
        primary = rt.policy.primary
        if not result.success and check is not primary and (name, primary) in self._wake:
            # chat or models failed: let the primary check say at once whether the server is gone
            self._wake[(name, primary)].set()
        awaiting = rt.status.awaiting(rt.policy)
        if not awaiting or check in awaiting:
            return
        recovered_at = rt.status.recovered_at or 0.0
        now = asyncio.get_running_loop().time()
        for other in awaiting:
            for started, scope in list(self._inflight.get((name, other), {}).values()):
                if started < recovered_at:
                    scope.reschedule(now)
            event = self._wake.get((name, other))
            if event is not None:
                event.set()

    async def probe_now(
        self, name: str, checks: Iterable[Check] | None = None
    ) -> list[ProbeResult]:
        """A fresh round of checks now (for the recovery receiver), concurrently, each through
        `probe` (so recorded, and never overlapping the loop's own probe of that check)."""
        rt = self.monitor.targets.get(name)
        if rt is None:
            return []
        wanted = list(checks or rt.policy.judged)  # the engine view has its own loop
        deadline = sum(getattr(rt.config.checks, c.value).timeout for c in wanted)

        async def run(check: Check, _model: str | None, _left: float) -> ProbeResult | None:
            return await self.probe(name, check)  # the model: the monitor's, once models ran

        found = await run_round(wanted, run, deadline, model=rt.model, stop_early=False)
        return found.results

    def wake(self, name: str) -> None:
        """Probe every check of a target soon (e.g. after a recovery action)."""
        for (target, _), event in self._wake.items():
            if target == name:
                event.set()

    async def _loop(self, name: str, check: Check) -> None:
        key = (name, check)
        wake = self._wake.setdefault(key, _Alarm())
        settings = self.monitor.settings
        interval = settings.interval_for(self.monitor.targets[name].config, check.value)
        # spread the first probes over the interval so a thousand targets do not fire at
        # once (and stay spread), while a handful still get their first answer within a second
        spread = min(interval, 0.01 * len(self._tasks))
        await asyncio.sleep(self._rng.uniform(0, spread))
        copies = 1
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.probe(name, check, copies)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not kill the loop
                log.exception("probe %s/%s raised", name, check.value)
            rt = self.monitor.targets.get(name)
            if rt is None:
                return
            delay = next_delay(rt.status, check, interval, rt.policy)
            copies = confirmations(rt.status, check, rt.policy)
            delay *= 1 + self._rng.uniform(-settings.jitter, settings.jitter) / 2
            # start to start, as Prometheus scrapes: a slow answer does not stretch the cadence
            waiter = wake.arm(loop)
            timer = loop.call_later(max(delay - (loop.time() - started), 0.05), _wake_up, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
