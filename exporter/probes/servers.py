"""Server profiles: what each model server offers besides the OpenAI API (its own liveness
path, what asking it costs) and how to tell the servers apart. The engine view's metric names
are another matter (probes/engine_metrics.py); these profiles are for the health check.

A target says what it is (`server:` in its config) or it is found out (`auto`, the default):
`identify` asks two cheap questions once (Ollama's `GET /`, LiteLLM's `/health/liveliness`),
and `/v1/models`' `owned_by` names vLLM, SGLang and llama-server (`from_owned_by`).
Each profile cites the source it was read from; docs/servers.md is the table for people.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

__all__ = [
    "GENERIC",
    "LITELLM_ALIVE_PATH",
    "NOT_OFFERED_RECHECK",
    "OLLAMA_ROOT_PATH",
    "PROFILES",
    "ServerProfile",
    "from_owned_by",
    "health_floor",
    "is_litellm_alive",
    "is_ollama_root",
    "profile_for",
]

NOT_OFFERED_RECHECK: Final = 600.0
"""A health endpoint the server does not offer is asked again every 10 minutes, not every
interval: the server may be replaced by one that has it."""


@dataclass(frozen=True, slots=True)
class ServerProfile:
    """One server's health endpoint (None: it has none) and the least time between two asks."""

    name: str
    health_path: str | None
    source: str
    health_min_interval: float = 0.0


PROFILES: Final[dict[str, ServerProfile]] = {
    p.name: p
    for p in (
        # vllm/entrypoints/openai/api_server.py (v0.34): GET /health, 200 empty, 503 once the
        # engine is known dead; it does not generate, so it may stay 200 while the engine hangs.
        ServerProfile("vllm", "/health", "vllm-project/vllm vllm/entrypoints/openai/api_server.py"),
        # python/sglang/srt/entrypoints/http_server.py (0.5.23): /health is /health_generate
        # (SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION defaults to true): a one-token generation
        # that sleeps 1 s per poll and waits up to SGLANG_HEALTH_CHECK_TIMEOUT (20 s) for the
        # scheduler. Asked more often than that, the checks pile up in its queue (sglang
        # #35884): never more than once per 30 s, so one always ends before the next.
        ServerProfile(
            "sglang",
            "/health",
            "sgl-project/sglang python/sglang/srt/entrypoints/http_server.py (0.5.23)",
            health_min_interval=30.0,
        ),
        # router/src/server.rs: GET /health, 200, or 503 {"error":"unhealthy"} after a failed
        # prefill/decode check of its own.
        ServerProfile(
            "tgi", "/health", "huggingface/text-generation-inference router/src/server.rs"
        ),
        # tools/server/server-context.cpp: GET /health 503 "Loading model" while loading, 200 when
        # ready; answered outside the inference loop.
        ServerProfile("llamacpp", "/health", "ggml-org/llama.cpp tools/server/server.cpp"),
        # server/routes.go (v0.33.0-rc2): no /health; GET / "Ollama is running" and GET
        # /api/version {"version": ...} are answered by the router without touching a model.
        ServerProfile("ollama", "/api/version", "ollama/ollama server/routes.go (v0.33.0-rc2)"),
        # litellm/proxy/health_endpoints/_health_endpoints.py (1.110.2): /health "makes an
        # LLM API call to each model" (its docs, proxy/health.md); /health/liveliness is the
        # unauthenticated "I'm alive!" meant for liveness probes.
        ServerProfile(
            "litellm",
            "/health/liveliness",
            "BerriAI/litellm litellm/proxy/health_endpoints/_health_endpoints.py (1.110.2)",
        ),
        # hosted OpenAI-compatible APIs (and api.openai.com itself): /v1/models and
        # /v1/chat/completions only, no health endpoint to ask.
        ServerProfile("openai", None, "OpenAI API reference: no health endpoint"),
    )
}

GENERIC: Final = ServerProfile("generic", "/health", "any other OpenAI-compatible server")
"""A server `auto` found no more about: the configured health path, 404 meaning "none"."""

OLLAMA_ROOT_PATH: Final = "/"
LITELLM_ALIVE_PATH: Final = "/health/liveliness"

# /v1/models' owned_by as each server sets it: vLLM (protocol.py ModelCard "vllm"), SGLang
# (srt/entrypoints/openai/protocol.py ModelCard "sglang"), llama-server (server-context.cpp
# "llamacpp"). Ollama's is the model's namespace and LiteLLM's the upstream provider: neither
# names the server.
_OWNED_BY: Final = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llamacpp"}


def profile_for(configured: str, detected: str | None) -> ServerProfile | None:
    """The profile a target's probes follow: the configured one, else the one found out;
    None while an `auto` target has not been identified yet."""
    name = configured if configured != "auto" else detected
    if name is None:
        return None
    return PROFILES.get(name, GENERIC)


def health_floor(configured: str, detected: str | None) -> float:
    """The least time between two health checks of this server (0: no floor)."""
    profile = profile_for(configured, detected)
    return profile.health_min_interval if profile is not None else 0.0


def from_owned_by(owners: list[str]) -> str | None:
    """The server a /v1/models list names by its `owned_by`, or None."""
    found = {_OWNED_BY[o] for o in owners if o in _OWNED_BY}
    return found.pop() if len(found) == 1 else None


def is_ollama_root(status: int, body: bytes) -> bool:
    """Ollama's `GET /`: 200 "Ollama is running" (server/routes.go)."""
    return status == 200 and body.strip() == b"Ollama is running"


def is_litellm_alive(status: int, body: bytes) -> bool:
    """LiteLLM's `GET /health/liveliness`: 200 with the JSON string "I'm alive!"."""
    if status != 200:
        return False
    try:
        return bool(json.loads(body) == "I'm alive!")
    except (ValueError, UnicodeDecodeError):
        return False
