"""The collector loop: every target's checks on one timer heap (timers.py), each probing
every interval (start to start) with jitter in a task of its own while it probes, a global
bound on concurrent probes, and a lock so a check never overlaps itself (except the probes
that confirm a timeout, which run together, never on a saturated engine). A slow target only delays itself. When a check
recovers, the others run again at once, and a probe still waiting since before the recovery
is abandoned: its answer would describe the outage. A chat due while real traffic proves the
server works may rest (engine/thrift.py): counted as skipped, not sent."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import replace

from exporter.config import TargetConfig
from exporter.engine.cadence import confirmations, next_delay
from exporter.engine.gates import Gates
from exporter.engine.monitor import Monitor
from exporter.engine.pauses import PauseWatch, excused_timeout, mostly_held
from exporter.engine.rounds import run_round
from exporter.engine.thrift import Sent, sent_now, skip_reason
from exporter.engine.timers import TimerHeap
from exporter.probes import PROBES, ProbeContext
from exporter.probes.results import Check, ProbeResult
from exporter.probes.servers import health_floor
from exporter.probes.transport import Transport
from exporter.util.faults import FaultKind

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


class _Slot:
    """One check of one target: its cadence, when it is due (on the heap), its probe task."""

    __slots__ = ("check", "config", "copies", "dead", "due", "interval", "name", "sent", "task")

    @property
    def key(self) -> tuple[str, Check]:
        return self.name, self.check

    def __init__(self, name: str, check: Check, config: TargetConfig, interval: float) -> None:
        self.name, self.check, self.config, self.interval = name, check, config, interval
        self.due: float | None = None
        self.copies = 1
        self.task: asyncio.Task[None] | None = None
        self.dead = False
        self.sent: Sent | None = None  # the last probe sent (the chat's rest needs it)


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
        self._slots: dict[tuple[str, Check], _Slot] = {}
        self._timers = TimerHeap(self._fire)
        self._gates = Gates()
        # probes in flight: when each began, and the scope that abandons it
        self._inflight: dict[tuple[str, Check], dict[int, tuple[float, asyncio.Timeout]]] = {}
        self._rng = random.Random()
        self.started = False

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.started = True
        self._timers.start()
        self.sync()

    def sync(self) -> None:
        """Schedule the checks of targets without them; drop those of targets gone or changed
        (a probe of theirs in flight is cancelled)."""
        wanted = {
            (name, check) for name, rt in self.monitor.targets.items() for check in rt.policy.checks
        }
        for key in list(self._slots):
            slot = self._slots[key]
            rt = self.monitor.targets.get(key[0])
            if key not in wanted or rt is None or slot.config is not rt.config:
                self._drop(key)
        settings = self.monitor.settings
        new = []
        for key in sorted(wanted - self._slots.keys()):
            config = self.monitor.targets[key[0]].config
            new.append(_Slot(*key, config, settings.interval_for(config, key[1].value)))
        self._slots.update((slot.key, slot) for slot in new)
        now = asyncio.get_running_loop().time()
        for slot in new:
            # spread the first probes over the interval so a thousand targets do not fire at
            # once (and stay spread), while a handful still get their first answer within a second
            spread = min(slot.interval, 0.01 * len(self._slots))
            self._timers.at(now + self._rng.uniform(0, spread), slot)

    def _drop(self, key: tuple[str, Check]) -> None:
        slot = self._slots.pop(key)
        slot.dead = True
        self._timers.cancel(slot)
        if slot.task is not None:
            slot.task.cancel()

    async def stop(self) -> None:
        tasks = [slot.task for slot in self._slots.values() if slot.task is not None]
        for key in list(self._slots):
            self._drop(key)
        await self._timers.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.started = False

    # ---- probing ---------------------------------------------------------------------------
    async def probe(self, name: str, check: Check, copies: int = 1) -> ProbeResult | None:
        """One probe of one check (or `copies` at once, to confirm a timeout), never
        overlapping another round of the same target and check; results are recorded as they
        come. Returns the last one; None when the target is gone or the probe was abandoned."""
        rt = self.monitor.targets.get(name)
        if rt is None:
            return None
        async with self._gates.hold((name, check)):
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
            ctx = ProbeContext(self.client, cfg, spec.timeout, rt.model, rt.detected_server)
            inflight = self._inflight.setdefault(key, {})
            slot = self._slots.get(key)
            if slot is not None and check is Check.CHAT:
                slot.sent = sent_now(rt.status, rt.policy, time.time())
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
        if not again and excused_timeout(self.pauses, name, result):
            if self.pauses is not None:
                self.pauses.retries += 1
            return await self._run(name, check, again=True)
        if again and mostly_held(self.pauses, result):
            # held again, in one piece, for half its time: our own pause twice; not judged
            result = replace(
                result,
                fault=FaultKind.LOOP_HELD,
                reason=None,
                detail=f"timed out twice while the exporter's own event loop was held: "
                f"{result.detail}",
            )
        self.monitor.record(name, result)
        if result.fault is None:  # our own fault says nothing the other checks must confirm
            self._react(name, check, result)
        return result

    def _react(self, name: str, check: Check, result: ProbeResult) -> None:
        """Wake the checks whose word is needed now."""
        rt = self.monitor.targets.get(name)
        if rt is None:
            return
        primary = rt.policy.primary
        if not result.success and check is not primary:
            # chat or models failed: let the primary check say at once whether the server is gone
            self._poke(self._slots.get((name, primary)))
        awaiting = rt.status.awaiting(rt.policy)
        if not awaiting or check in awaiting:
            return
        recovered_at = rt.status.recovered_at or 0.0
        now = asyncio.get_running_loop().time()
        for other in awaiting:
            for started, scope in list(self._inflight.get((name, other), {}).values()):
                if started < recovered_at:
                    scope.reschedule(now)
            self._poke(self._slots.get((name, other)))

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
        for (target, _), slot in self._slots.items():
            if target == name:
                self._poke(slot)

    def _poke(self, slot: _Slot | None) -> None:
        """Probe a waiting check now. A check probing now is left alone: its own result is
        the fresh one."""
        if slot is not None and slot.task is None and not slot.dead:
            self._timers.at(asyncio.get_running_loop().time(), slot)

    def _rests(self, slot: _Slot) -> bool:
        """The chat due now is not sent: real traffic proves what it would (engine/thrift.py).
        Counted by reason; the last real answer stays its result."""
        rt = self.monitor.targets.get(slot.name)
        if rt is None or slot.check is not Check.CHAT or not rt.config.checks.chat.skip_when_busy:
            return False
        spec = rt.config.checks.chat
        try:
            reason = skip_reason(rt.status, rt.policy, slot.sent, spec.max_skip, time.time())
        except Exception:  # runs on the timer heap's task: a bug must not stop every check
            log.exception("deciding whether %s/chat may rest raised: sending it", slot.name)
            return False
        if reason is None:
            return False
        self.monitor.skipped(slot.name, slot.check, reason.value)
        return True

    def _fire(self, slot: _Slot) -> None:
        if slot.task is None and not slot.dead:
            loop = asyncio.get_running_loop()
            if self._rests(slot):  # no task for a turn that sends nothing
                self._again(slot, loop.time(), rested=True)
                return
            slot.task = loop.create_task(self._turn(slot))

    async def _turn(self, slot: _Slot) -> None:
        """One round of a check, then its next time on the heap (start to start, as
        Prometheus scrapes: a slow answer does not stretch the cadence)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self.probe(slot.name, slot.check, slot.copies)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not end the check's cadence
            log.exception("probe %s/%s raised", slot.name, slot.check.value)
        finally:
            slot.task = None
        self._again(slot, started)

    def _again(self, slot: _Slot, started: float, rested: bool = False) -> None:
        """The check's next time on the heap, from when this turn started. A resting chat
        asks again at the engine view's cadence (a decision, no request): once the view stops
        showing progress, the chat runs within one engine interval, not one chat interval."""
        loop = asyncio.get_running_loop()
        rt = self.monitor.targets.get(slot.name)
        if rt is None or slot.dead:
            return
        interval = slot.interval
        if slot.check is Check.HEALTH:  # e.g. SGLang's /health generates a token: not too often
            interval = max(interval, health_floor(rt.config.server, rt.detected_server))
        delay = next_delay(rt.status, slot.check, interval, rt.policy)
        if rested:
            engine = self.monitor.settings.interval_for(rt.config, Check.ENGINE.value)
            delay = min(delay, engine)
        slot.copies = confirmations(rt.status, slot.check, rt.policy, time.time())
        jitter = self.monitor.settings.jitter
        delay *= 1 + self._rng.uniform(-jitter, jitter) / 2
        self._timers.at(max(started + delay, loop.time() + 0.05), slot)
