"""One chat completion moving through the simulated engine: queue, prefill, decode, and the
faults that bite on the way (full answer or an SSE stream, as vLLM sends them)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from exporter.simulate import wire
from exporter.simulate.answer import Plan
from exporter.simulate.config import SimulatorConfig
from exporter.simulate.conn import Conn, SimStats
from exporter.simulate.engine import Scheduler
from exporter.simulate.faults import FaultBoard
from exporter.simulate.http import ResponseWriter
from exporter.simulate.metrics import RequestRecord, VllmMetrics

__all__ = ["DEFAULT_DRIP_SECONDS", "GARBAGE_BODY", "JSON", "EngineParts", "Generation"]

JSON = wire.JSON_CONTENT_TYPE
GARBAGE_BODY = b"\x00\xff\xfe<html><body><h1>502 Bad Gateway</h1></body></html>\n\x1b[0m%%"
DEFAULT_DRIP_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class EngineParts:
    """The server's pieces a generation uses (the public API holds the same ones)."""

    config: SimulatorConfig
    faults: FaultBoard
    scheduler: Scheduler
    metrics: VllmMetrics
    stats: SimStats


class Generation:
    """One request moving through the simulated engine: queue, prefill, decode."""

    def __init__(
        self,
        parts: EngineParts,
        conn: Conn,
        w: ResponseWriter,
        model: str,
        plan: Plan,
        prompt_tokens: int,
        max_tokens: int,
        arrived: float,
        messages: list[dict[str, Any]],
    ) -> None:
        self.parts = parts
        self.conn = conn
        self.w = w
        self.model = model
        self.plan = plan
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.arrived = arrived
        self.request_id = wire.new_request_id()
        self.created = int(time.time())
        key = hash(json.dumps(messages, sort_keys=True, default=str))
        self.cached = parts.scheduler.cached_tokens(key, prompt_tokens)
        self.admitted = arrived
        self.first_token_at = arrived
        self.generated = 0
        self.kv = 0

    def _timing(self) -> tuple[float, float, float]:
        """(queue delay, time to first token, seconds per token) under current faults."""
        cfg = self.parts.config
        now = time.monotonic()
        slow = self.parts.faults.get("slow", now)
        over = self.parts.faults.get("overloaded", now) or self.parts.faults.get("overload", now)
        ttft, itl, queue = cfg.ttft_seconds, cfg.token_interval_seconds, 0.0
        if slow is not None:
            ttft += slow.seconds or 0.0
            itl += slow.token_seconds
        if over is not None:
            self.parts.scheduler.phantom_waiting = over.waiting
            queue = 1.0 if over.seconds is None else over.seconds
            itl = itl * 2 + 0.001
        return queue, ttft, itl

    def _fault(self, kind: str) -> Any:
        return self.parts.faults.get(kind, time.monotonic())

    async def _admit(self) -> tuple[float, float]:
        queue, ttft, itl = self._timing()
        await self.parts.scheduler.admit(queue)
        self.admitted = time.monotonic()
        self.kv = self.prompt_tokens
        self.parts.scheduler.kv_tokens += self.kv
        return ttft, itl

    def _leave(self, finish_reason: str) -> None:
        sched = self.parts.scheduler
        sched.kv_tokens -= self.kv
        sched.release()
        now = time.monotonic()
        stats = self.parts.stats
        if finish_reason == "abort":
            stats.aborted += 1
        else:
            stats.completed += 1
        prefill = self.first_token_at - self.admitted if self.generated else now - self.admitted
        self.parts.metrics.finished(
            self.model,
            RequestRecord(
                finish_reason=finish_reason,
                prompt_tokens=self.prompt_tokens,
                generation_tokens=self.generated,
                max_tokens=self.max_tokens,
                e2e_seconds=now - self.arrived,
                queue_seconds=self.admitted - self.arrived,
                prefill_seconds=max(0.0, prefill),
                decode_seconds=max(0.0, now - self.first_token_at) if self.generated else 0.0,
                cached_tokens=self.cached,
            ),
        )

    def _token(self, first: bool, last_at: float) -> float:
        now = time.monotonic()
        self.generated += 1
        self.kv += 1
        self.parts.scheduler.kv_tokens += 1
        if self._fault("stall"):
            return now  # a stalled engine records no steps: its counters freeze
        if first:
            self.first_token_at = now
            self.parts.metrics.first_token(self.model, now - self.arrived, self.prompt_tokens)
        else:
            self.parts.metrics.next_token(self.model, now - last_at)
        return now

    async def _never_finish(self) -> None:
        self.parts.stats.injected_faults += 1
        await self.conn.wait_closed_by_peer()

    async def full(self) -> None:
        """Non-streaming: one JSON body after the whole answer is generated."""
        if self._fault("health_lies") or self._fault("stall"):
            await self._never_finish()
            return
        ttft, itl = await self._admit()
        finish = "abort"
        try:
            await asyncio.sleep(ttft)
            last = self._token(True, 0.0)
            for _ in self.plan.pieces[1:]:
                await asyncio.sleep(itl)
                last = self._token(False, last)
            if self._fault("reset"):
                self.parts.stats.injected_faults += 1
                self.conn.close_now()
                return
            body = wire.chat_completion(
                self.request_id, self.created, self.model, self.plan.text,
                self.plan.finish_reason, self.prompt_tokens, self.plan.completion_tokens,
            )  # fmt: skip
            await self.w.send(200, wire.dumps(body), JSON)
            finish = self.plan.finish_reason
        except ConnectionError:
            pass
        finally:
            self._leave(finish)

    async def stream(self, include_usage: bool) -> None:
        """SSE: headers at once, then role + first token after TTFT, one token per step."""
        w, rid, created, model = self.w, self.request_id, self.created, self.model
        try:
            await w.start_stream(200, wire.SSE_CONTENT_TYPE)
        except ConnectionError:
            return
        if self._fault("health_lies"):
            await self._never_finish()
            return
        ttft, itl = await self._admit()
        finish = "abort"
        try:
            await asyncio.sleep(ttft)
            if self._fault("stall"):
                # vLLM v1 (entrypoints/openai/serving_chat.py) sends the role chunk with the
                # engine core's first output: a hung engine core sends none, after the headers
                # nothing comes
                await self._never_finish()
                return
            last = self._token(True, 0.0)
            await w.write_chunk(wire.sse(wire.chunk_role(rid, created, model)))
            pieces = self.plan.pieces
            for i, piece in enumerate(pieces):
                if i:
                    await asyncio.sleep(itl)
                    last = self._token(False, last)
                if await self._cut_short(i):
                    return
                if i == len(pieces) - 1:
                    chunk = wire.chunk_finish(rid, created, model, piece, self.plan.finish_reason)
                else:
                    chunk = wire.chunk_content(rid, created, model, piece)
                await w.write_chunk(wire.sse(chunk))
            if include_usage:
                usage = wire.chunk_usage(
                    rid, created, model, self.prompt_tokens, self.plan.completion_tokens
                )
                await w.write_chunk(wire.sse(usage))
            await w.write_chunk(wire.DONE)
            await w.end_stream()
            finish = self.plan.finish_reason
        except ConnectionError:
            pass
        finally:
            self._leave(finish)

    async def _cut_short(self, sent: int) -> bool:
        """`stall`/`reset` after `after_tokens` deltas: True if the stream ends here."""
        stall = self._fault("stall")
        if stall is not None and sent >= stall.after_tokens:
            await self._never_finish()
            return True
        reset = self._fault("reset")
        if reset is not None and sent >= reset.after_tokens:
            self.parts.stats.injected_faults += 1
            await self.w.flush()
            self.conn.close_now()
            return True
        return False
