"""One timer for every check: a heap of due times, and one task that starts what is due.

A sleeping task per check (15,000 of them at 5,000 targets) kept a coroutine frame, a future,
a timer handle and a context each, ~2 KiB a check, and ~20 objects a check for the garbage
collector to walk (bench/memory.py, bench/memlive.py). A check waiting here is one heap entry;
it has a task only while it probes."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Protocol

from exporter.util.loop import stop_task

__all__ = ["Timed", "TimerHeap"]

EARLY = 0.001  # fired this much early rather than a wake-up on the loop clock's rounding


class Timed(Protocol):
    """What can wait on the heap: `due` is the one time it waits for (None: not waiting)."""

    due: float | None


def _wake_up(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class TimerHeap:
    """Calls `fire(item)` once the loop's clock reaches the time the item was last set for.
    Setting an item again replaces its time (the older heap entry is skipped when it comes up)."""

    def __init__(self, fire: Callable[[Any], None]) -> None:
        self._fire = fire
        self._heap: list[tuple[float, int, Timed]] = []
        self._seq = itertools.count()
        self._waiter: asyncio.Future[None] | None = None
        self._armed = math.inf  # when the dispatcher wakes next
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: float, item: Timed) -> None:
        """Fire `item` at loop time `when` (not before; as soon as the loop can after)."""
        item.due = when
        heapq.heappush(self._heap, (when, next(self._seq), item))
        if when < self._armed and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)  # sooner than the dispatcher sleeps: re-arm

    @staticmethod
    def cancel(item: Timed) -> None:
        item.due = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._dispatch(), name="timers")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        self._heap.clear()
        self._armed = math.inf

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        while True:
            now = loop.time()
            while heap and heap[0][0] <= now + EARLY:
                due, _, item = heapq.heappop(heap)
                if item.due == due:  # else set again since: a newer entry stands for it
                    item.due = None
                    self._fire(item)
            waiter = self._waiter = loop.create_future()
            timer = None
            if heap:
                self._armed = heap[0][0]
                timer = loop.call_at(self._armed, _wake_up, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                self._armed = math.inf
                if timer is not None:
                    timer.cancel()
