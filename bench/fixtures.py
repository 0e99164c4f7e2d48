"""The fixed answers every bench target gives, and the chat request both probers send.

The bodies are built with the simulator's vLLM wire helpers, so they have vLLM's real shape;
the request is exactly the bytes our chat probe sends, so blackbox_exporter POSTs the same."""

from __future__ import annotations

import json

from exporter.config import ChatCheck
from exporter.probes.chat import build_request
from exporter.simulate import wire

__all__ = [
    "CHAT_PATH",
    "CHAT_SSE",
    "EXPECT_CHAT",
    "EXPECT_MODEL_REGEX",
    "HEALTH_PATH",
    "MODEL",
    "MODELS_BODY",
    "MODELS_PATH",
    "chat_request_body",
    "response_for",
]

MODEL = "bench-model"
HEALTH_PATH = "/health"
MODELS_PATH = "/v1/models"
CHAT_PATH = "/v1/chat/completions"
EXPECT_CHAT = "Paris"
EXPECT_MODEL_REGEX = '"id":"' + MODEL + '"'

_CREATED = 1_700_000_000
_ID = "chatcmpl-0123456789abcdef0123456789abcdef"

MODELS_BODY: bytes = wire.dumps(wire.model_list(MODEL, 32768, created=_CREATED))
CHAT_SSE: bytes = b"".join(
    [
        wire.sse(wire.chunk_role(_ID, _CREATED, MODEL)),
        wire.sse(wire.chunk_content(_ID, _CREATED, MODEL, EXPECT_CHAT)),
        wire.sse(wire.chunk_finish(_ID, _CREATED, MODEL, "", "stop")),
        wire.sse(wire.chunk_usage(_ID, _CREATED, MODEL, 17, 2)),
        wire.DONE,
    ]
)


def chat_request_body() -> bytes:
    """The bytes our chat probe POSTs with the default check and the bench model."""
    import httpx  # here: bench/us.py imports this module into the measured exporter process

    body = build_request(ChatCheck(), MODEL)
    return httpx.Request("POST", "http://127.0.0.1/", json=body).content


def response_for(path: str) -> tuple[int, str, bytes]:
    """(status, content type, body) for a request path, as the bench servers answer it."""
    if path == HEALTH_PATH:
        return 200, "application/json", b""
    if path == MODELS_PATH:
        return 200, wire.JSON_CONTENT_TYPE, MODELS_BODY
    if path == CHAT_PATH:
        return 200, "text/event-stream", CHAT_SSE
    return 404, wire.JSON_CONTENT_TYPE, json.dumps({"error": "not found"}).encode()
