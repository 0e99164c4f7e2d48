"""The exporter's own pauses: a watchdog that wakes on a short period and notes how late it
woke. A late wake-up means the event loop was held (a long callback, a full garbage collection,
the machine swapping, the process stopped), and every probe in flight meanwhile measured that
hold as the server's slowness; a deadline may even have fired only because the loop could not
read an answer that was already there.

The first rule of the project is that the monitor never reports its own pause as a broken
server: the scheduler asks `paused_during` before it counts a timed-out probe, and the lateness
of every wake-up is exported (`llm_exporter_event_loop_lag_seconds`), so a pause is visible as
the exporter's, not the target's."""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque

from exporter.engine.histogram import Histogram
from exporter.probes.results import ProbeResult, Reason
from exporter.util.loop import stop_task

__all__ = ["LAG_BUCKETS", "PauseWatch", "excused_timeout", "mostly_held"]

log = logging.getLogger(__name__)

PERIOD = 0.1  # seconds between wake-ups: ten a second cost the loop about 0.1 ms
NOTED = 0.02  # lateness kept as a pause (shorter: timer granularity and ordinary turns)
TOLD = 0.5  # a pause this long is logged
KEPT = 600.0  # seconds of pauses remembered (longer than any probe deadline)
LAG_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0)


class PauseWatch:
    """Wakes every PERIOD seconds; a wake-up later than NOTED is kept as a pause
    (wall-clock start, end), so a probe's window (its timestamp and duration, wall clock)
    can be checked against it."""

    def __init__(self) -> None:
        self.lag = Histogram(LAG_BUCKETS)
        self.longest = 0.0  # the longest pause since start, seconds
        self.retries = 0  # timed-out probes asked again because of a pause (scheduler.py)
        self._starts: deque[float] = deque()
        self._ends: deque[float] = deque()
        self._task: asyncio.Task[None] | None = None

    def note(self, start: float, end: float) -> None:
        """Record that the loop was held from `start` to `end` (wall clock)."""
        self._starts.append(start)
        self._ends.append(end)
        self.longest = max(self.longest, end - start)
        while self._starts and self._ends[0] < end - KEPT:
            self._starts.popleft()
            self._ends.popleft()

    def paused_during(self, start: float, end: float) -> float:
        """Seconds of the window [start, end] (wall clock) in which the loop was held."""
        total = 0.0
        i = bisect.bisect_left(self._ends, start)
        for j in range(i, len(self._starts)):
            s, e = self._starts[j], self._ends[j]
            if s >= end:
                break
            total += max(0.0, min(e, end) - max(s, start))
        return total

    def longest_during(self, start: float, end: float) -> float:
        """The longest single pause overlapping the window [start, end] (its part inside)."""
        longest = 0.0
        i = bisect.bisect_left(self._ends, start)
        for j in range(i, len(self._starts)):
            s, e = self._starts[j], self._ends[j]
            if s >= end:
                break
            longest = max(longest, min(e, end) - max(s, start))
        return longest

    def excuses(self, timestamp: float, duration: float) -> float:
        """The pause within a probe's window if it is long enough to have caused a timeout
        (a tenth of the window or more), else 0: that probe is asked again, not counted."""
        paused = self.paused_during(timestamp, timestamp + duration)
        return paused if paused >= max(NOTED, 0.1 * duration) else 0.0

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="pause-watch")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _watch(self) -> None:
        while True:
            due = time.perf_counter() + PERIOD
            await asyncio.sleep(PERIOD)
            late = max(0.0, time.perf_counter() - due)
            self.lag.observe(late)
            if late >= NOTED:
                now = time.time()
                self.note(now - late, now)
            if late >= TOLD:
                log.warning(
                    "the exporter's own event loop was held for %.2fs: probe timings in that "
                    "window include it, and timeouts in it are asked again, not counted",
                    late,
                )


def mostly_held(pauses: PauseWatch | None, result: ProbeResult) -> bool:
    """A timeout during which our own loop was held in one piece for half its time or more (a
    stall: a full collection, swapping, a stopped process). Many short delays of a busy
    machine do not count: a hung server must still go down there."""
    if result.reason is not Reason.TIMEOUT or pauses is None or result.fault:
        return False
    held = pauses.longest_during(result.timestamp, result.timestamp + result.duration)
    return held >= 0.5 * result.duration


def excused_timeout(pauses: PauseWatch | None, name: str, result: ProbeResult) -> bool:
    """A timeout while the exporter's own loop was held: the deadline may have fired on an
    answer the loop could not read. Not counted; the scheduler asks again at once, once."""
    if result.reason is not Reason.TIMEOUT or pauses is None or result.fault:
        return False
    paused = pauses.excuses(result.timestamp, result.duration)
    if not paused:
        return False
    log.debug(
        "probe %s/%s timed out while the exporter itself was held for %.2fs of its %.2fs: "
        "not counted, asking again",
        name,
        result.check.value,
        paused,
        result.duration,
    )
    return True
