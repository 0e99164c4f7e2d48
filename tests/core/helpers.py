"""Test helpers for the core: SSE bodies in vLLM's framing, written from vLLM's source
(vllm/entrypoints/openai/serving_chat.py), independent of the probe's parser."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tests.core.local_server import MODEL

__all__ = ["MODEL", "chunk", "vllm_stream"]


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
