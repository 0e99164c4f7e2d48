"""The probes' one transport (exporter/probes/transport.py) against a real loopback server:
each way a server can answer or fail maps to its reason, and the requests carry the headers
a server sees from llm-heartbeat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from exporter import __version__
from exporter.config import ChatCheck, Checks, TargetConfig
from exporter.probes import ProbeContext, make_client, probe_chat, probe_health, probe_models
from exporter.probes.results import Reason
from tests.conftest import free_port
from tests.core.helpers import MODEL, vllm_stream
from tests.servers import serve_aiohttp

SEEN: list[list[tuple[str, str]]] = []  # every header line, duplicates kept
BODIES: list[dict[str, Any]] = []  # every chat request body


async def _models(request: web.Request) -> web.Response:
    SEEN.append(sorted((k.lower(), v) for k, v in request.headers.items() if k.lower() != "host"))
    return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})


async def _chat(request: web.Request) -> web.StreamResponse:
    SEEN.append(sorted((k.lower(), v) for k, v in request.headers.items() if k.lower() != "host"))
    body = await request.json()
    BODIES.append(body)
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


CASES = [
    ("ok", probe_health, {}, None),
    ("ok", probe_models, {}, None),
    ("ok", probe_chat, {}, None),
    ("loading", probe_health, {}, Reason.LOADING),
    ("auth", probe_models, {"api_key": "sk-secret"}, Reason.UNAUTHORIZED),
    ("cut", probe_chat, {}, Reason.STREAM_INCOMPLETE),
    ("slow", probe_health, {}, Reason.TIMEOUT),
    ("big", probe_models, {"max_body_bytes": 1024 * 4}, Reason.BODY_TOO_LARGE),
    ("text", probe_chat, {}, Reason.INVALID_RESPONSE),
    (None, probe_health, {}, Reason.CONNECT_ERROR),
]


@pytest.mark.parametrize(("path", "probe", "extra", "reason"), CASES)
async def test_each_answer_maps_to_its_reason(
    server: str, path: str | None, probe: Any, extra: dict[str, Any], reason: Reason | None
) -> None:
    url = f"{server}/{path}" if path else f"http://127.0.0.1:{free_port()}"
    target = TargetConfig(name="t", url=url, **extra)
    async with make_client(8) as client:
        result = await probe(ProbeContext(client, target, 0.5, MODEL))
    assert result.reason is reason, result.detail
    assert result.success is (reason is None)
    assert "sk-secret" not in result.detail


async def test_request_headers_as_a_server_sees_them(server: str) -> None:
    target = TargetConfig(
        name="t",
        url=f"{server}/ok",
        api_key="sk-secret",
        headers={"accept-encoding": "br", "X-Team": "a"},
    )
    SEEN.clear()
    async with make_client(8) as client:
        ctx = ProbeContext(client, target, 2.0, MODEL)
        assert (await probe_models(ctx)).success
        assert (await probe_chat(ctx)).success
    assert len(SEEN) == 2
    models_headers, chat_headers = SEEN
    assert [v for k, v in models_headers if k == "accept-encoding"] == ["br"]  # wins, once
    assert ("authorization", "Bearer sk-secret") in models_headers
    assert ("x-team", "a") in models_headers
    assert next(v for k, v in chat_headers if k == "user-agent").startswith("llm-heartbeat/")
    assert ("content-type", "application/json") in chat_headers
    assert not [k for k, _ in chat_headers if k == "cookie"]


async def test_synthetic_requests_are_labelled(server: str) -> None:
    """Each probe names the exporter (User-Agent), carries a request id of its own, and the
    chat sends the OpenAI `user` field: what a gateway keys on to keep probes out of SLOs."""
    SEEN.clear()
    BODIES.clear()
    async with make_client(8) as client:
        for user in ("llm-heartbeat", "probe-team-a", None):
            chat = ChatCheck(user=user)
            target = TargetConfig(name="t", url=f"{server}/ok", checks=Checks(chat=chat))
            ctx = ProbeContext(client, target, 2.0, MODEL)
            assert (await probe_models(ctx)).success
            assert (await probe_chat(ctx)).success
    assert [b.get("user", "(none)") for b in BODIES] == ["llm-heartbeat", "probe-team-a", "(none)"]
    ids = [v for headers in SEEN for k, v in headers if k == "x-request-id"]
    assert len(ids) == len(SEEN) == 6
    assert len(set(ids)) == 6 and all(i.startswith("llm-heartbeat-") for i in ids)
    agents = {v for headers in SEEN for k, v in headers if k == "user-agent"}
    assert agents == {f"llm-heartbeat/{__version__}"}


async def test_the_default_accept_encoding_is_identity(server: str) -> None:
    SEEN.clear()
    async with make_client(8) as client:
        target = TargetConfig(name="t", url=f"{server}/ok")
        assert (await probe_models(ProbeContext(client, target, 2.0, MODEL))).success
    assert [v for k, v in SEEN[0] if k == "accept-encoding"] == ["identity"]
