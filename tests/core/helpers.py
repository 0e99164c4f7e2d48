"""Test helpers for the core: SSE bodies in vLLM's framing, written from vLLM's source
(vllm/entrypoints/openai/serving_chat.py), independent of the probe's parser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import respx

from exporter.config import TargetConfig
from exporter.probes import ProbeContext

MODEL = "Qwen/Qwen3-4B-Instruct-2507"
URL = "http://model.test:8000"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}}
    if finish is not None:
        choice["finish_reason"] = finish
        choice["stop_reason"] = None
    return {
        "id": "chatcmpl-0f1e2d",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": MODEL,
        "choices": [choice],
        **extra,
    }


def vllm_stream(
    words: Iterable[str] = ("Par", "is"),
    *,
    usage: bool = True,
    done: bool = True,
    finish: str | None = "stop",
) -> list[bytes]:
    """The events vLLM sends for a streamed chat completion, one bytes object per event."""
    events = [chunk({"role": "assistant", "content": ""})]
    words = list(words)
    for i, w in enumerate(words):
        last = i == len(words) - 1
        events.append(chunk({"content": w}, finish if last else None))
    if not words and finish is not None:
        events.append(chunk({"content": ""}, finish))
    if usage:
        n = len(words)
        events.append(
            {
                "id": "chatcmpl-0f1e2d",
                "object": "chat.completion.chunk",
                "created": 1764000000,
                "model": MODEL,
                "choices": [],
                "usage": {"prompt_tokens": 17, "total_tokens": 17 + n, "completion_tokens": n},
            }
        )
    out = [f"data: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events]
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


class Chunks(httpx.AsyncByteStream):
    def __init__(self, parts: Iterable[bytes]) -> None:
        self.parts = list(parts)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for p in self.parts:
            yield p


def sse_response(
    parts: Iterable[bytes], status: int = 200, ctype: str = "text/event-stream; charset=utf-8"
) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": ctype}, stream=Chunks(parts))


def context(
    router: respx.Router, timeout: float = 5.0, model: str | None = MODEL, **target: Any
) -> ProbeContext:
    client = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
    return ProbeContext(client, TargetConfig(name="t", url=URL, **target), timeout, model)
