"""The probes' direct aiohttp path gives the same verdicts, figures and failure reasons as
the same probe through httpx (on httpx-aiohttp), against a real loopback server, and sends
the same request headers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from exporter.config import TargetConfig
from exporter.probes import ProbeContext, make_client, probe_chat, probe_health, probe_models
from exporter.probes.results import ProbeResult, Reason
from tests.conftest import free_port
from tests.core.helpers import MODEL, vllm_stream
from tests.servers import serve_aiohttp

SEEN: list[list[tuple[str, str]]] = []  # every header line, duplicates kept


async def _models(request: web.Request) -> web.Response:
    SEEN.append(sorted((k.lower(), v) for k, v in request.headers.items() if k.lower() != "host"))
    return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})


async def _chat(request: web.Request) -> web.StreamResponse:
    SEEN.append(sorted((k.lower(), v) for k, v in request.headers.items() if k.lower() != "host"))
    body = await request.json()
    assert body["model"] == MODEL and body["stream"] is True
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)
    for part in vllm_stream():
        await resp.write(part)
    await resp.write_eof()
    return resp


async def _cut(request: web.Request) -> web.StreamResponse:
    await request.read()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(vllm_stream()[0])
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.close()  # the server dies mid-stream
    return resp


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.Response(text="late")


def _fixed(make: Any) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        return make()

    return handler


def _app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ok/health", _fixed(web.Response))
    app.router.add_get("/ok/v1/models", _models)
    app.router.add_post("/ok/v1/chat/completions", _chat)
    app.router.add_get(
        "/loading/health",
        _fixed(
            lambda: web.json_response({"error": {"message": "loading", "type": "x"}}, status=503)
        ),
    )
    app.router.add_get(
        "/auth/v1/models",
        _fixed(lambda: web.json_response({"error": "bad key"}, status=401)),
    )
    app.router.add_post("/cut/v1/chat/completions", _cut)
    app.router.add_get("/slow/health", _slow)
    app.router.add_get("/big/v1/models", _fixed(lambda: web.Response(body=b"x" * 5000)))
    app.router.add_post(
        "/text/v1/chat/completions",
        _fixed(lambda: web.Response(text="hi", content_type="text/plain")),
    )
    return app


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async with serve_aiohttp(_app()) as url:
        yield url


def _comparable(result: ProbeResult) -> dict[str, Any]:
    out = dataclasses.asdict(result)
    for key in ("duration", "timestamp", "phases", "ttft", "max_stall", "tokens_per_second"):
        out.pop(key)
    return out


CASES = [
    ("ok", probe_health, {}),
    ("ok", probe_models, {}),
    ("ok", probe_chat, {}),
    ("loading", probe_health, {}),
    ("auth", probe_models, {"api_key": "sk-secret"}),
    ("cut", probe_chat, {}),
    ("slow", probe_health, {}),
    ("big", probe_models, {"max_body_bytes": 1024 * 4}),
    ("text", probe_chat, {}),
    (None, probe_health, {}),
]


@pytest.mark.parametrize(("path", "probe", "extra"), CASES)
async def test_direct_path_reads_like_httpx(
    server: str, path: str | None, probe: Any, extra: dict[str, Any]
) -> None:
    url = f"{server}/{path}" if path else f"http://127.0.0.1:{free_port()}"
    target = TargetConfig(name="t", url=url, **extra)
    results = []
    for transport in ("aiohttp", "httpx-aiohttp"):
        client = make_client(8, transport=transport)
        assert (client.direct is not None) == (transport == "aiohttp")
        try:
            results.append(await probe(ProbeContext(client, target, 0.5, MODEL)))
        finally:
            await client.aclose()
    direct, via_httpx = results
    assert _comparable(direct) == _comparable(via_httpx)
    if path == "ok":
        assert direct.success
    else:
        assert not direct.success and direct.reason is not None
    if path == "cut":
        assert direct.reason is Reason.STREAM_INCOMPLETE


async def test_same_request_headers_both_ways(server: str) -> None:
    target = TargetConfig(
        name="t",
        url=f"{server}/ok",
        api_key="sk-secret",
        headers={"accept-encoding": "br", "X-Team": "a"},
    )
    seen = []
    for transport in ("aiohttp", "httpx-aiohttp"):
        SEEN.clear()
        client = make_client(8, transport=transport)
        try:
            ctx = ProbeContext(client, target, 2.0, MODEL)
            assert (await probe_models(ctx)).success
            assert (await probe_chat(ctx)).success
        finally:
            await client.aclose()
        seen.append(list(SEEN))
    direct, via_httpx = seen
    assert direct == via_httpx
    models_headers = direct[0]
    assert [v for k, v in models_headers if k == "accept-encoding"] == ["br"]  # wins, once
    assert ("authorization", "Bearer sk-secret") in models_headers
    assert ("content-type", "application/json") in direct[1]
