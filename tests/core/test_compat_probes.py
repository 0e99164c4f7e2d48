"""The probes against servers that are not vLLM (issue 27), each a fake speaking that server's
own wire format (tests/core/shapes.py cites the sources), through the production transport."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate
from typing import Any

import pytest
from aiohttp import web

from exporter.config import TargetConfig
from exporter.probes import ProbeContext, make_client, probe_chat, probe_health, probe_models
from exporter.probes._base import parse_retry_after
from exporter.probes.health import identify
from exporter.probes.results import Reason
from exporter.probes.servers import PROFILES, from_owned_by, health_floor
from exporter.probes.transport import Transport
from tests.core.shapes import Seen, litellm_app, llama_cpp_python_app, ollama_app
from tests.servers import serve_aiohttp

AppFactory = Callable[[Seen], web.Application]


@pytest.fixture
async def client() -> AsyncIterator[Transport]:
    transport = make_client()
    try:
        yield transport
    finally:
        await transport.aclose()


def _ctx(client: Transport, url: str, detected: str | None = None, **cfg: Any) -> ProbeContext:
    """A context for a target configured with `cfg`, found to be `detected` (None: not yet)."""
    target = TargetConfig(name="t", url=url, **cfg)
    return ProbeContext(client, target, 5.0, None, detected)


# ---- Ollama --------------------------------------------------------------------------------
async def test_ollama_is_identified_and_its_own_liveness_passes(client: Transport) -> None:
    seen = Seen()
    async with serve_aiohttp(ollama_app(seen)) as url:
        assert await identify(_ctx(client, url)) == "ollama"
        first = await probe_health(_ctx(client, url))
        assert first.success and first.offered and first.server == "ollama", first
        # once known, the health check asks Ollama's /api/version and nothing else
        seen.requests.clear()
        again = await probe_health(_ctx(client, url, detected="ollama"))
    assert again.success and again.status_code == 200, again
    assert seen.paths() == ["/api/version"]


async def test_ollama_models_and_streamed_chat_pass(client: Transport) -> None:
    seen = Seen()
    async with serve_aiohttp(ollama_app(seen)) as url:
        models = await probe_models(_ctx(client, url))
        ctx = ProbeContext(client, TargetConfig(name="t", url=url), 5.0, "qwen3:4b")
        chat = await probe_chat(ctx)
    assert models.success and models.models == ("qwen3:4b",), models
    assert models.server is None  # owned_by "library" names no server
    assert chat.success, chat
    assert chat.content == "Paris" and chat.finish_reason == "stop"
    assert chat.ttft is not None and chat.completion_tokens == 2  # from the usage chunk


async def test_ollama_server_busy_is_rate_limited_not_broken(client: Transport) -> None:
    seen = Seen(busy=True)
    async with serve_aiohttp(ollama_app(seen)) as url:
        ctx = ProbeContext(client, TargetConfig(name="t", url=url), 5.0, "qwen3:4b")
        chat = await probe_chat(ctx)
    assert not chat.success and chat.reason is Reason.RATE_LIMITED, chat
    assert chat.status_code == 503 and "server busy" in chat.detail


# ---- a server without /health --------------------------------------------------------------
async def test_a_server_without_health_is_not_offered_not_failed(client: Transport) -> None:
    seen = Seen()
    async with serve_aiohttp(llama_cpp_python_app(seen)) as url:
        health = await probe_health(_ctx(client, url))
        chat = await probe_chat(ProbeContext(client, TargetConfig(name="t", url=url), 5.0, None))
    assert not health.success and not health.offered, health
    assert health.reason is Reason.NOT_OFFERED and health.status_code == 404
    assert "no such endpoint" in health.detail and "not a failure" in health.detail
    assert health.server == "generic"  # identified once: neither Ollama nor LiteLLM
    assert chat.success and chat.content == "Paris", chat  # no usage chunk: counted chunks
    assert ("GET", "/health") in seen.requests


async def test_405_on_health_is_not_offered_either(client: Transport) -> None:
    async def method_not_allowed(_: web.Request) -> web.Response:
        return web.json_response({"detail": "Method Not Allowed"}, status=405)

    app = web.Application()
    app.router.add_post("/health", method_not_allowed)
    app.router.add_get("/health", method_not_allowed)
    async with serve_aiohttp(app) as url:
        result = await probe_health(_ctx(client, url, detected="generic"))
    assert result.reason is Reason.NOT_OFFERED and result.status_code == 405, result


async def test_a_hosted_api_has_no_health_endpoint_and_is_not_asked(client: Transport) -> None:
    seen = Seen()
    async with serve_aiohttp(llama_cpp_python_app(seen)) as url:
        result = await probe_health(_ctx(client, url, server="openai"))
    assert result.reason is Reason.NOT_OFFERED and result.status_code is None, result
    assert seen.requests == []


def test_server_openai_without_chat_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"only checks\.chat can prove"):
        TargetConfig(
            name="t", url="http://x:1", server="openai", checks={"chat": {"enabled": False}}
        )


# ---- LiteLLM -------------------------------------------------------------------------------
async def test_litellm_is_asked_liveliness_never_its_costly_health(client: Transport) -> None:
    seen = Seen()
    async with serve_aiohttp(litellm_app(seen)) as url:
        first = await probe_health(_ctx(client, url))
        second = await probe_health(_ctx(client, url, detected=first.server))
        configured = await probe_health(_ctx(client, url, server="litellm"))
    assert first.success and first.server == "litellm", first
    assert second.success and configured.success
    assert "/health/liveliness" in seen.paths()
    assert "/health" not in seen.paths(), seen.requests  # it calls every model behind it


async def test_litellm_429_is_rate_limited_with_its_retry_after(client: Transport) -> None:
    seen = Seen(busy=True)
    async with serve_aiohttp(litellm_app(seen)) as url:
        ctx = ProbeContext(client, TargetConfig(name="t", url=url), 5.0, "gpt-4o-mini")
        seconds = await probe_chat(ctx)
        seen.retry_after = formatdate(time.time() + 30, usegmt=True)
        dated = await probe_chat(ctx)
        seen.retry_after = None
        bare = await probe_chat(ctx)
    for r in (seconds, dated, bare):
        assert not r.success and r.reason is Reason.RATE_LIMITED and r.status_code == 429, r
        assert "rate_limit_error: Rate limit exceeded" in r.detail
    assert seconds.retry_after == 60.0
    assert dated.retry_after is not None and 25 <= dated.retry_after <= 31
    assert bare.retry_after is None


async def test_models_owned_by_names_the_server(client: Transport) -> None:
    async def vllm_models(_: web.Request) -> web.Response:
        card = {"id": "m", "object": "model", "created": 1, "owned_by": "vllm", "root": "m"}
        return web.json_response({"object": "list", "data": [card]})

    app = web.Application()
    app.router.add_get("/v1/models", vllm_models)
    async with serve_aiohttp(app) as url:
        result = await probe_models(_ctx(client, url))
    assert result.success and result.server == "vllm", result


# ---- pure helpers --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: now
        ("99999999999999999999", 86400.0),  # absurd: a day at most
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, time.time()) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    now = time.time()
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now) == pytest.approx(90, abs=1)


def test_profiles_cite_their_source_and_sglang_is_asked_rarely() -> None:
    assert set(PROFILES) == {"vllm", "sglang", "tgi", "llamacpp", "ollama", "litellm", "openai"}
    for profile in PROFILES.values():
        assert profile.source, profile.name
    assert health_floor("sglang", None) >= 30  # its /health generates a token, up to 20 s
    assert health_floor("auto", "sglang") >= 30
    assert health_floor("vllm", None) == 0 and health_floor("auto", None) == 0
    assert PROFILES["ollama"].health_path == "/api/version"
    assert PROFILES["litellm"].health_path == "/health/liveliness"
    assert PROFILES["openai"].health_path is None


def test_owned_by() -> None:
    assert from_owned_by(["sglang"]) == "sglang"
    assert from_owned_by(["llamacpp", "llamacpp"]) == "llamacpp"
    assert from_owned_by(["library"]) is None  # Ollama's namespace
    assert from_owned_by(["openai"]) is None  # LiteLLM's provider
    assert from_owned_by(["vllm", "sglang"]) is None


async def test_identification_survives_a_hostile_root(client: Transport) -> None:
    """A web UI of megabytes at `/` (llama-server's) is not read past 4 KiB, a page that only
    mentions Ollama is not Ollama, and the health check goes on to /health."""

    async def huge(_: web.Request) -> web.Response:
        return web.Response(body=b"Ollama is running" + b" " * (8 << 20), content_type="text/html")

    async def health(_: web.Request) -> web.Response:
        return web.Response(status=200)

    app = web.Application()
    app.router.add_get("/", huge)
    app.router.add_get("/health", health)
    async with serve_aiohttp(app) as url:
        assert await identify(_ctx(client, url)) == "generic"
        result = await probe_health(_ctx(client, url))
    assert result.success and result.server == "generic", result
