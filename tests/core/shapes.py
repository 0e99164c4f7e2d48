"""Model servers that are not vLLM, each speaking its own wire format as its source writes it
(file and version cited per server), for the compatibility tests (issue 27). They answer a
fixed short completion ("Paris") and record every request (method, path, headers).

- Ollama v0.33.0-rc2 (ollama/ollama@fb30760): routes from server/routes.go (`GET /` "Ollama
  is running", `/api/version`, `/api/tags`, `/v1/models`, `/v1/chat/completions`; anything
  else gin's 404 "404 page not found"); the OpenAI layer from middleware/openai.go
  (ChatWriter, ListWriter, writeError) and openai/openai.go (toChunk, FinishChunk,
  ToListCompletion, NewError); its full queue from server/sched.go (ErrMaxQueue) answered 503
  by routes.go handleScheduleError.
- llama-cpp-python 0.3.36's own server (llama_cpp/server/app.py, FastAPI): no /health (FastAPI's
  404 {"detail":"Not Found"}), /v1/models with owned_by "me", chat streamed by sse-starlette
  with sep="\\n", chunks from llama_chat_format.py _convert_text_completion_chunks_to_chat (a
  role chunk, content chunks, a finish chunk with an empty delta; no usage chunk), then
  `data: [DONE]`.
- SGLang 0.5.23 (python/sglang/srt/entrypoints/http_server.py): `/health` (= /health_generate)
  answers an empty 200 once its one-token generation came back; `/v1/models` is ModelList of
  ModelCard (srt/entrypoints/openai/protocol.py: owned_by "sglang", root, parent,
  max_model_len) through ORJSONResponse; other paths FastAPI's 404. No chat here (the test
  that uses it disables the chat check).
- LiteLLM proxy 1.110.2 (litellm wheel): /health/liveliness "I'm alive!"
  (proxy/health_endpoints/_health_endpoints.py), /health behind the key and calling every
  model, /v1/models with owned_by = the provider (proxy/utils.py), a rate limit as
  parallel_request_limiter_v3.py raises it (ProxyRateLimitError: 429, headers retry-after,
  rate_limit_type, reset_at) and proxy_server.py's openai_exception_handler writes it
  ({"error": {"message", "type": "rate_limit_error", "param": null, "code": "429"}}).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Seen", "litellm_app", "llama_cpp_python_app", "ollama_app", "sglang_app"]

ANSWER = ("Par", "is")


@dataclass
class Seen:
    """What a fake was asked, in order, and how it should behave now."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.monotonic() of each request
    headers: list[dict[str, str]] = field(default_factory=list)
    busy: bool = False  # Ollama: queue full; LiteLLM: rate limited
    retry_after: str | None = "60"

    def paths(self, method: str = "GET") -> list[str]:
        return [p for m, p in self.requests if m == method]


def _recorder(seen: Seen) -> Any:
    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.requests.append((request.method, request.path))
        seen.times.append(time.monotonic())
        seen.headers.append(dict(request.headers))
        return await handler(request)

    return record


def _go_json(obj: Any, status: int = 200) -> web.Response:
    """gin's json.NewEncoder(w).Encode(...): compact JSON and a newline (middleware/openai.go)."""
    body = json.dumps(obj, separators=(",", ":")) + "\n"
    return web.Response(status=status, text=body, content_type="application/json")


# ---- Ollama --------------------------------------------------------------------------------
def ollama_app(seen: Seen, model: str = "qwen3:4b") -> web.Application:
    created = 1765065600

    async def root(_: web.Request) -> web.Response:
        # routes.go: c.String(http.StatusOK, "Ollama is running")
        return web.Response(text="Ollama is running", content_type="text/plain", charset="utf-8")

    async def version(_: web.Request) -> web.Response:
        # routes.go: c.JSON(http.StatusOK, gin.H{"version": version.Version}); gin's c.JSON
        # writes no trailing newline and "application/json; charset=utf-8"
        return web.Response(
            text=json.dumps({"version": "0.33.0-rc2"}, separators=(",", ":")),
            content_type="application/json",
            charset="utf-8",
        )

    async def tags(_: web.Request) -> web.Response:
        # api/types.go ListResponse{Models: []ListModelResponse}
        entry = {
            "name": model,
            "model": model,
            "modified_at": "2026-12-07T00:00:00Z",
            "size": 2497293918,
            "digest": "e55aed6fe643f9368b2f48f8aaa56ec787b75765da69f794c0a0c23bfe7c64b2",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "qwen3",
                "families": ["qwen3"],
                "parameter_size": "4.0B",
                "quantization_level": "Q4_K_M",
            },
        }
        return web.Response(
            text=json.dumps({"models": [entry]}, separators=(",", ":")),
            content_type="application/json",
            charset="utf-8",
        )

    async def models(_: web.Request) -> web.Response:
        # openai.go ToListCompletion: owned_by is the model name's namespace ("library")
        data = [{"id": model, "object": "model", "created": created, "owned_by": "library"}]
        return _go_json({"object": "list", "data": data})

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if seen.busy:
            # sched.go ErrMaxQueue -> routes.go 503 {"error": err} -> ChatWriter.writeError ->
            # openai.NewError(503, ...): type "api_error", param and code null
            message = "server busy, please try again.  maximum pending requests exceeded"
            err = {"message": message, "type": "api_error", "param": None, "code": None}
            return _go_json({"error": err}, status=503)
        cid = "chatcmpl-417"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            # openai.go ChatCompletionChunk; ChunkChoice.finish_reason is a *string (null
            # until the finish chunk); Delta's role/content are omitempty
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

        if not body.get("stream"):
            raise web.HTTPBadRequest(text="the compat fake streams only")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        # the first response carries the role and its content together (includeRole)
        await resp.write(chunk({"role": "assistant", "content": ANSWER[0]}))
        for piece in ANSWER[1:]:
            await resp.write(chunk({"content": piece}))
        # the done response's empty trailer is skipped; FinishChunk has an empty delta
        await resp.write(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16}
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_ollama",
                "choices": [],
                "usage": usage,
            }
            await resp.write(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    @web.middleware
    async def gin_404(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:  # gin's default 404 body
            return web.Response(status=404, text="404 page not found", content_type="text/plain")

    app = web.Application(middlewares=[_recorder(seen), gin_404])
    app.router.add_get("/", root)  # add_get also answers HEAD, as routes.go registers both
    app.router.add_get("/api/version", version)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    return app


# ---- llama-cpp-python's server (a server without /health) ---------------------------------
def llama_cpp_python_app(seen: Seen, model: str = "qwen3-4b") -> web.Application:
    created = 1765065600

    async def models(_: web.Request) -> web.Response:
        data = [{"id": model, "object": "model", "owned_by": "me", "permissions": []}]
        return web.json_response({"object": "list", "data": data})

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            raise web.HTTPBadRequest(text="the compat fake streams only")
        cid = "chatcmpl-6f1c2a9e-4b7d-4c1e-9a53-0d2b7c8e1f00"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            obj = {
                "id": cid,
                "model": model,
                "created": created,
                "object": "chat.completion.chunk",
                "choices": [choice],
            }
            return b"data: " + json.dumps(obj).encode() + b"\n\n"  # sse-starlette, sep="\n"

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        await resp.write(chunk({"role": "assistant"}))
        for piece in ANSWER:
            await resp.write(chunk({"content": piece}))
        await resp.write(chunk({}, "stop"))  # include_usage is ignored: no usage chunk
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    @web.middleware
    async def fastapi_errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return web.json_response({"detail": "Not Found"}, status=404)
        except web.HTTPMethodNotAllowed:
            return web.json_response({"detail": "Method Not Allowed"}, status=405)

    app = web.Application(middlewares=[_recorder(seen), fastapi_errors])
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    return app


# ---- SGLang (health and models only) -------------------------------------------------------
def sglang_app(seen: Seen, model: str = "Qwen/Qwen3-4B-Instruct-2507") -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200)  # Response(status_code=200): no body

    async def models(_: web.Request) -> web.Response:
        card = {
            "id": model,
            "object": "model",
            "created": 1765065600,
            "owned_by": "sglang",
            "root": model,
            "parent": None,
            "max_model_len": 262144,
        }
        body = json.dumps({"object": "list", "data": [card]}, separators=(",", ":"))
        return web.Response(text=body, content_type="application/json")  # orjson: compact

    @web.middleware
    async def fastapi_404(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return web.json_response({"detail": "Not Found"}, status=404)

    app = web.Application(middlewares=[_recorder(seen), fastapi_404])
    app.router.add_get("/health", health)
    app.router.add_get("/health_generate", health)
    app.router.add_get("/v1/models", models)
    return app


# ---- LiteLLM proxy -------------------------------------------------------------------------
def litellm_app(seen: Seen, model: str = "gpt-4o-mini") -> web.Application:
    async def liveliness(_: web.Request) -> web.Response:
        return web.json_response("I'm alive!")

    async def health(_: web.Request) -> web.Response:
        # "makes an LLM API call to each model": a monitor must never poll this
        return web.json_response(
            {"healthy_endpoints": [{"model": model}], "unhealthy_endpoints": []}
        )

    async def models(_: web.Request) -> web.Response:
        data = [{"id": model, "object": "model", "created": 1677610602, "owned_by": "openai"}]
        return web.json_response({"data": data, "object": "list"})

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not seen.busy:
            return await _litellm_stream(request, body, model)
        reset = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + 60))
        message = (
            "Rate limit exceeded for key: 88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1"
            "243fe6b4b. Limit type: requests. Current limit: 1, Remaining: 0. "
            f"Limit resets at: {reset}"
        )
        err = {"message": message, "type": "rate_limit_error", "param": None, "code": "429"}
        headers = {"rate_limit_type": "requests", "reset_at": reset, "x-litellm-version": "1.110.2"}
        if seen.retry_after is not None:
            headers["retry-after"] = seen.retry_after
        return web.json_response({"error": err}, status=429, headers=headers)

    app = web.Application(middlewares=[_recorder(seen)])
    app.router.add_get("/health/liveliness", liveliness)
    app.router.add_get("/health/liveness", liveliness)
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def _litellm_stream(request: web.Request, body: Any, model: str) -> web.StreamResponse:
    cid = "chatcmpl-2b7e4f1a-9c3d-4e8f-a1b2-c3d4e5f6a7b8"
    base = {"id": cid, "created": 1765065600, "model": model, "object": "chat.completion.chunk"}
    chunks: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": {"content": ANSWER[0], "role": "assistant"}}]},
        *({**base, "choices": [{"index": 0, "delta": {"content": p}}]} for p in ANSWER[1:]),
        {**base, "choices": [{"finish_reason": "stop", "index": 0, "delta": {}}]},
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"completion_tokens": 2, "prompt_tokens": 14, "total_tokens": 16}
        chunks.append({**base, "choices": [], "usage": usage})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for c in chunks:
        await resp.write(f"data: {json.dumps(c)}\n\n".encode())
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp
