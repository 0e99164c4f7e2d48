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
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from exporter.simulate import wire
from exporter.simulate.answer import WRONG_ANSWER, count_prompt_tokens, plan_answer
from exporter.simulate.conn import Conn, SimStats
from exporter.simulate.generation import (
    DEFAULT_DRIP_SECONDS,
    GARBAGE_BODY,
    JSON,
    EngineParts,
    Generation,
)
from exporter.simulate.http import HttpError, Request, ResponseWriter, read_request

__all__ = ["Conn", "PublicApi", "SimStats"]

LOADING_BODY = wire.dumps(
    {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}
)


_ROUTES: dict[str, tuple[tuple[str, ...], str]] = {
    "/health": (("GET",), "health"),
    "/ping": (("GET", "POST"), "health"),
    "/version": (("GET",), "version"),
    "/metrics": (("GET",), "prometheus"),
    "/v1/models": (("GET",), "models"),
    "/v1/chat/completions": (("POST",), "chat"),
}


class PublicApi:
    def __init__(self, parts: EngineParts, served_model: Callable[[], str]) -> None:
        self.parts = parts
        self.config = config = parts.config
        self.faults = parts.faults
        self.metrics = parts.metrics
        self.stats = parts.stats
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

    async def serve(self, conn: Conn) -> None:
        """The requests of one client connection, until it closes (HTTP/1.1 keep-alive)."""
        reader, writer = conn.reader, conn.writer
        peer = writer.get_extra_info("peername")
        peer_host = peer[0] if isinstance(peer, tuple) else ""
        try:
            while True:
                try:
                    req = await read_request(reader, writer, peer_host)
                except HttpError as exc:
                    w = ResponseWriter(writer, keep_alive=False)
                    body = wire.error_body(exc.message, "Bad Request", exc.status)
                    await w.send(exc.status, body, "application/json")
                    break
                if req is None:
                    break
                w = ResponseWriter(writer, req.keep_alive)
                await self.handle(req, w, conn)
                if not (w.finished and w.keep_alive) or writer.is_closing():
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass

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
        gen = Generation(self.parts, conn, w, model, plan, prompt_tokens, limit, arrived, messages)
        if stream:
            await gen.stream(include_usage)
        else:
            await gen.full()
