"""The public, vLLM-compatible API of one simulated server, faults included.

Routes: GET /health, /ping, /version, /metrics, /v1/models; POST /v1/chat/completions.
Order of checks follows vLLM: API key (only /v1/*), request validation (400 "Bad
Request"), model check (404 NotFoundError, param "model"), input limits (400
BadRequestError), then the engine.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from exporter.simulate import wire
from exporter.simulate.answer import WRONG_ANSWER, Plan, count_prompt_tokens, plan_answer
from exporter.simulate.config import SimulatorConfig
from exporter.simulate.engine import Scheduler
from exporter.simulate.faults import FaultBoard
from exporter.simulate.http import Request, ResponseWriter
from exporter.simulate.metrics import RequestRecord, VllmMetrics

__all__ = ["Conn", "PublicApi", "SimStats"]

JSON = wire.JSON_CONTENT_TYPE
LOADING_BODY = wire.dumps(
    {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}
)
GARBAGE_BODY = b"\x00\xff\xfe<html><body><h1>502 Bad Gateway</h1></body></html>\n\x1b[0m%%"
DEFAULT_DRIP_SECONDS = 0.2


@dataclass(slots=True)
class SimStats:
    """What the server has done; `sim.stats` hands out a copy."""

    requests: int = 0
    health: int = 0
    models: int = 0
    metrics: int = 0
    chat_completions: int = 0
    completed: int = 0
    aborted: int = 0
    errors: int = 0
    injected_faults: int = 0
    connections: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class Conn:
    """One client connection: the stream reader (to notice the client leaving) and writer."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def wait_closed_by_peer(self) -> None:
        """Never answer: read (and drop) whatever comes until the client gives up."""
        while await self.reader.read(65536):
            pass

    def close_now(self) -> None:
        """End the connection with a FIN, mid-response or not."""
        self.writer.close()


class _Abort(Exception):
    """The client went away mid-request."""


class PublicApi:
    def __init__(
        self,
        config: SimulatorConfig,
        faults: FaultBoard,
        scheduler: Scheduler,
        metrics: VllmMetrics,
        stats: SimStats,
        served_model: Callable[[], str],
    ) -> None:
        self.config = config
        self.faults = faults
        self.scheduler = scheduler
        self.metrics = metrics
        self.stats = stats
        self.served_model = served_model
        self.random = random.Random(config.seed)
        self._key_hash = (
            hashlib.sha256(config.api_key.encode()).digest() if config.api_key else None
        )

    # ----- helpers -------------------------------------------------------------------

    async def _error(
        self, w: ResponseWriter, status: int, message: str, err_type: str, param: str | None
    ) -> None:
        self.stats.errors += 1
        await w.send(status, wire.error_body(message, err_type, status, param), JSON)

    def _authorized(self, req: Request) -> bool:
        if self._key_hash is None:
            return True
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return secrets.compare_digest(hashlib.sha256(token.encode()).digest(), self._key_hash)

    # ----- dispatch ------------------------------------------------------------------

    async def handle(self, req: Request, w: ResponseWriter, conn: Conn) -> None:
        """Answer one request (or, under some faults, deliberately not)."""
        now = time.monotonic()
        self.stats.requests += 1
        if self.faults.get("hang", now):
            self.stats.injected_faults += 1
            await conn.wait_closed_by_peer()
            return
        drip = self.faults.get("drip", now)
        if drip is not None:
            w.drip = (
                DEFAULT_DRIP_SECONDS if drip.seconds is None else drip.seconds,
                drip.chunk_bytes,
            )
        if self.faults.get("loading", now):
            self.stats.injected_faults += 1
            await w.send(503, LOADING_BODY, JSON)
            return
        if self.faults.get("server_error", now):
            self.stats.injected_faults += 1
            await self._error(w, 500, "Internal server error", "InternalServerError", None)
            return
        path = req.path
        if path.startswith("/v1") and req.method != "OPTIONS" and not self._authorized(req):
            await w.send(401, wire.dumps({"error": "Unauthorized"}), JSON)
            return
        route = _ROUTES.get(path)
        if route is None:
            await self._error(w, 404, "Not Found", "Not Found", None)
            return
        methods, name = route
        if req.method not in methods:
            await self._error(w, 405, "Method Not Allowed", "Method Not Allowed", None)
            return
        await getattr(self, name)(req, w, conn)

    async def health(self, req: Request, w: ResponseWriter, conn: Conn) -> None:
        self.stats.health += 1
        await w.send(200)

    async def version(self, req: Request, w: ResponseWriter, conn: Conn) -> None:
        await w.send(200, wire.dumps({"version": self.config.version}), JSON)

    async def prometheus(self, req: Request, w: ResponseWriter, conn: Conn) -> None:
        self.stats.metrics += 1
        self.metrics.prime(self.served_model())
        await w.send(200, self.metrics.render(), CONTENT_TYPE_LATEST)

    async def models(self, req: Request, w: ResponseWriter, conn: Conn) -> None:
        self.stats.models += 1
        if self.faults.get("garbage", time.monotonic()):
            self.stats.injected_faults += 1
            await w.send(200, GARBAGE_BODY, JSON)
            return
        body = wire.model_list(self.served_model(), self.config.max_model_len)
        await w.send(200, wire.dumps(body), JSON)

    # ----- chat completions ----------------------------------------------------------

    def _validate(self, req: Request) -> tuple[dict[str, Any] | None, tuple[Any, ...] | None]:
        """The parsed body, or the error (status, message, type, param) vLLM would send."""
        media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            msg = (
                "[{'loc': ['header', 'content-type'], 'msg': \"Unsupported Media Type: "
                "Only 'application/json' is allowed\", 'type': 'value_error'}]"
            )
            return None, (400, msg, "Bad Request", None)
        try:
            body = json.loads(req.body)
        except (ValueError, UnicodeDecodeError) as exc:
            msg = (
                "[{'type': 'json_invalid', 'loc': ('body', 0), 'msg': 'JSON decode error', "
                f"'input': {{}}, 'ctx': {{'error': '{type(exc).__name__}'}}}}]"
            )
            return None, (400, msg, "Bad Request", None)
        if not isinstance(body, dict):
            msg = (
                "[{'type': 'model_attributes_type', 'loc': ('body',), 'msg': 'Input should "
                "be a valid dictionary or object to extract fields from'}]"
            )
            return None, (400, msg, "Bad Request", None)
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
        ):
            kind = "missing" if messages is None else "list_type"
            text = "Field required" if messages is None else "Input should be a valid list"
            msg = f"[{{'type': '{kind}', 'loc': ('body', 'messages'), 'msg': '{text}'}}]"
            return None, (400, msg, "Bad Request", None)
        if body.get("stream_options") and not body.get("stream"):
            msg = (
                "[{'type': 'value_error', 'loc': ('body',), 'msg': 'Value error, Stream "
                "options can only be defined when `stream=True`.'}]"
            )
            return None, (400, msg, "Bad Request", None)
        for name in ("max_tokens", "max_completion_tokens", "temperature", "seed"):
            value = body.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                msg = f"[{{'type': 'int_type', 'loc': ('body', '{name}'), 'msg': 'Input should be a valid number'}}]"
                return None, (400, msg, "Bad Request", None)
        return body, None

    async def chat(self, req: Request, w: ResponseWriter, conn: Conn) -> None:
        self.stats.chat_completions += 1
        arrived = time.monotonic()
        body, err = self._validate(req)
        if err is not None or body is None:
            await self._error(w, *err)  # type: ignore[misc]
            return
        model = self.served_model()
        requested = body.get("model")
        if requested is not None and requested != model:
            await self._error(
                w, 404, f"The model `{requested}` does not exist.", "NotFoundError", "model"
            )
            return
        messages: list[dict[str, Any]] = body["messages"]
        prompt_tokens = count_prompt_tokens(messages)
        max_len = self.config.max_model_len
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        temperature = body.get("temperature")
        if temperature is not None and temperature < 0:
            msg = f"temperature must be non-negative, got {float(temperature)}."
            await self._error(w, 400, msg, "BadRequestError", "temperature")
            return
        if prompt_tokens >= max_len:
            msg = (
                f"This model's maximum context length is {max_len} tokens. However, your "
                f"request has {prompt_tokens} input tokens. Please reduce the length of the "
                "input messages."
            )
            await self._error(w, 400, msg, "BadRequestError", "input_tokens")
            return
        if max_tokens is not None and max_tokens < 1:
            msg = f"max_tokens must be at least 1, got {int(max_tokens)}."
            await self._error(w, 400, msg, "BadRequestError", "max_tokens")
            return
        if max_tokens is not None and prompt_tokens + max_tokens > max_len:
            msg = (
                f"'max_tokens' or 'max_completion_tokens' is too large: {int(max_tokens)}. "
                f"This model's maximum context length is {max_len} tokens and your request "
                f"has {prompt_tokens} input tokens ({int(max_tokens)} > {max_len} - "
                f"{prompt_tokens})."
            )
            await self._error(w, 400, msg, "BadRequestError", "max_tokens")
            return
        limit = int(max_tokens) if max_tokens is not None else max_len - prompt_tokens

        now = time.monotonic()
        faults = self.faults
        error_rate = faults.get("error_rate", now)
        if error_rate is not None and self.random.random() < error_rate.rate:
            self.stats.injected_faults += 1
            status = error_rate.status or self.random.choice((500, 503))
            if status == 500:
                await self._error(w, 500, "Internal server error", "InternalServerError", None)
            else:
                await self._error(
                    w, 503, "The engine is overloaded, please retry.", "Service Unavailable",
                    None,
                )  # fmt: skip
            return
        stream = bool(body.get("stream"))
        if faults.get("garbage", now):
            self.stats.injected_faults += 1
            await w.send(200, GARBAGE_BODY, wire.SSE_CONTENT_TYPE if stream else JSON)
            return
        wrong = faults.get("wrong_answer", now)
        plan = plan_answer(
            messages, limit, (wrong.answer or WRONG_ANSWER) if wrong is not None else None
        )
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage", True))
        gen = _Generation(self, conn, w, model, plan, prompt_tokens, limit, arrived, messages)
        if stream:
            await gen.stream(include_usage)
        else:
            await gen.full()


class _Generation:
    """One request moving through the simulated engine: queue, prefill, decode."""

    def __init__(
        self,
        api: PublicApi,
        conn: Conn,
        w: ResponseWriter,
        model: str,
        plan: Plan,
        prompt_tokens: int,
        max_tokens: int,
        arrived: float,
        messages: list[dict[str, Any]],
    ) -> None:
        self.api = api
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
        self.cached = api.scheduler.cached_tokens(key, prompt_tokens)
        self.admitted = arrived
        self.first_token_at = arrived
        self.generated = 0
        self.kv = 0

    def _timing(self) -> tuple[float, float, float]:
        """(queue delay, time to first token, seconds per token) under current faults."""
        cfg = self.api.config
        now = time.monotonic()
        slow = self.api.faults.get("slow", now)
        over = self.api.faults.get("overloaded", now) or self.api.faults.get("overload", now)
        ttft, itl, queue = cfg.ttft_seconds, cfg.token_interval_seconds, 0.0
        if slow is not None:
            ttft += slow.seconds or 0.0
            itl += slow.token_seconds
        if over is not None:
            self.api.scheduler.phantom_waiting = over.waiting
            queue = 1.0 if over.seconds is None else over.seconds
            itl = itl * 2 + 0.001
        return queue, ttft, itl

    def _fault(self, kind: str) -> Any:
        return self.api.faults.get(kind, time.monotonic())

    async def _admit(self) -> tuple[float, float]:
        queue, ttft, itl = self._timing()
        await self.api.scheduler.admit(queue)
        self.admitted = time.monotonic()
        self.kv = self.prompt_tokens
        self.api.scheduler.kv_tokens += self.kv
        return ttft, itl

    def _leave(self, finish_reason: str) -> None:
        sched = self.api.scheduler
        sched.kv_tokens -= self.kv
        sched.release()
        now = time.monotonic()
        stats = self.api.stats
        if finish_reason == "abort":
            stats.aborted += 1
        else:
            stats.completed += 1
        prefill = self.first_token_at - self.admitted if self.generated else now - self.admitted
        self.api.metrics.finished(
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
        self.api.scheduler.kv_tokens += 1
        if self._fault("stall"):
            return now  # a stalled engine records no steps: its counters freeze
        if first:
            self.first_token_at = now
            self.api.metrics.first_token(self.model, now - self.arrived, self.prompt_tokens)
        else:
            self.api.metrics.next_token(self.model, now - last_at)
        return now

    async def _never_finish(self) -> None:
        self.api.stats.injected_faults += 1
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
                self.api.stats.injected_faults += 1
                self.conn.close_now()
                return
            body = wire.chat_completion(
                self.request_id, self.created, self.model, self.plan.text,
                self.plan.finish_reason, self.prompt_tokens, self.plan.completion_tokens,
            )  # fmt: skip
            await self.w.send(200, wire.dumps(body), JSON)
            finish = self.plan.finish_reason
        except (ConnectionError, _Abort):
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
            self.api.stats.injected_faults += 1
            await self.w.flush()
            self.conn.close_now()
            return True
        return False


_ROUTES: dict[str, tuple[tuple[str, ...], str]] = {
    "/health": (("GET",), "health"),
    "/ping": (("GET", "POST"), "health"),
    "/version": (("GET",), "version"),
    "/metrics": (("GET",), "prometheus"),
    "/v1/models": (("GET",), "models"),
    "/v1/chat/completions": (("POST",), "chat"),
}
