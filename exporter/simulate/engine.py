"""The simulated engine's scheduler: who runs, who waits, how full the KV cache is.

Real requests take a slot out of `max_num_seqs`; the rest wait. The `overloaded`/`overload`
faults add phantom load on top so `vllm:num_requests_waiting` rises even when only a probe is
talking; `stall` leaves phantom requests stuck in the running batch and freezes the gauges
as they stood when the engine core hung.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from exporter.simulate.faults import FaultBoard
from exporter.simulate.metrics import EngineGauges, VllmMetrics

__all__ = ["Scheduler", "engine_gauges"]

_PREFIX_CACHE_ENTRIES = 1024


class Scheduler:
    def __init__(self, max_num_seqs: int, kv_cache_tokens: int) -> None:
        self.max_num_seqs = max_num_seqs
        self.kv_cache_tokens = kv_cache_tokens
        self._slots = asyncio.Semaphore(max_num_seqs)
        self.running = 0
        self.waiting = 0
        self.kv_tokens = 0
        self.phantom_waiting = 0
        self.frozen: EngineGauges | None = None
        """The gauges as they stood when the engine core hung (`stall`)."""
        self._background_at: float | None = None
        self._prefixes: OrderedDict[int, None] = OrderedDict()

    async def admit(self, queue_delay: float) -> None:
        """Wait for a slot (and for `queue_delay` while overloaded), counted as waiting."""
        self.waiting += 1
        try:
            if queue_delay > 0:
                await asyncio.sleep(queue_delay)
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1

    def release(self) -> None:
        self.running -= 1
        self._slots.release()

    def background_tokens(self, now: float, token_interval: float, busy: bool) -> int:
        """Tokens the phantom batch of a busy engine generated since the last call (one per
        sequence per token interval), so its counters keep rising between scrapes."""
        last, self._background_at = self._background_at, now
        if not busy or last is None:
            return 0
        return int((now - last) * self.max_num_seqs / max(token_interval, 0.01))

    def cached_tokens(self, prompt_key: int, prompt_tokens: int) -> int:
        """Prefix-cache hits: a prompt seen recently is served from cache."""
        if prompt_key in self._prefixes:
            self._prefixes.move_to_end(prompt_key)
            return prompt_tokens
        self._prefixes[prompt_key] = None
        if len(self._prefixes) > _PREFIX_CACHE_ENTRIES:
            self._prefixes.popitem(last=False)
        return 0

    def gauges(self, overloaded: bool, stuck: int = 0) -> EngineGauges:
        if overloaded:
            running = max(self.running, self.max_num_seqs)
            waiting = self.waiting + self.phantom_waiting
            usage = max(0.97, min(1.0, self.kv_tokens / self.kv_cache_tokens))
        else:
            running, waiting = self.running + stuck, self.waiting
            usage = min(1.0, self.kv_tokens / self.kv_cache_tokens)
        return EngineGauges(running, waiting, round(usage, 6))


def engine_gauges(
    scheduler: Scheduler, faults: FaultBoard, metrics: VllmMetrics, model: str, itl: float
) -> EngineGauges:
    """The engine's gauges at a scrape, under the faults in force: an overloaded engine keeps
    generating for its other users (its counters advance), a stalled one holds its requests
    and advances nothing."""
    now = time.monotonic()
    over = faults.get("overloaded", now) or faults.get("overload", now)
    stall = faults.get("stall", now)
    busy = over is not None and stall is None
    tokens = scheduler.background_tokens(now, itl, busy)
    if tokens > 0:
        metrics.background_tokens(model, tokens)
    if over is not None:
        scheduler.phantom_waiting = over.waiting
    if stall is None:
        scheduler.frozen = None
        return scheduler.gauges(over is not None)
    # vLLM v1 sets its gauges from the engine core's stats only (v1/metrics/loggers.py
    # record()): a hung core sends none, so they stay as they were when it hung
    if scheduler.frozen is None:
        scheduler.frozen = scheduler.gauges(over is not None, stall.running)
    return scheduler.frozen
