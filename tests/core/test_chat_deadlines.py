"""The chat probe's streaming deadlines: a hung engine is a timeout after `ttft_timeout` (no
first token) or `chunk_timeout` (tokens stopped), long before the total `timeout`; a slow but
flowing answer is not a failure. Through the production transport, against a local server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from exporter.probes import probe_chat
from exporter.probes.results import Reason

from .helpers import vllm_stream
from .local_server import Handler, LocalServer

CHAT = "/v1/chat/completions"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    await srv.start()
    yield srv
    await srv.stop()


def paced(server: LocalServer, pauses: list[float], hang_after: int | None = None) -> Handler:
    """vLLM's events, with a pause before each one (or a hang after `hang_after` events)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, event in enumerate(vllm_stream(("Par", "is", "."))):
            if i == hang_after:
                await server.hang()
                return resp
            await asyncio.sleep(pauses[i] if i < len(pauses) else 0)
            await resp.write(event)
        await resp.write_eof()
        return resp

    return handler


def chat(ttft: float | None, gap: float | None) -> dict:
    return {"chat": {"ttft_timeout": ttft, "chunk_timeout": gap}}


async def test_no_response_at_all_is_a_first_token_timeout(server: LocalServer) -> None:
    async def hang(request: web.Request) -> web.Response:
        await server.hang()
        return web.Response()

    server.post(CHAT).handle(hang)
    r = await probe_chat(server.context(timeout=30, checks=chat(0.2, 5)))
    assert r.reason is Reason.TIMEOUT and r.detail == "no first token within 0.2s"


async def test_role_chunk_then_silence_is_a_first_token_timeout(server: LocalServer) -> None:
    """vLLM sends the role chunk before any token: it is not a first token."""
    server.post(CHAT).handle(paced(server, [], hang_after=1))
    r = await probe_chat(server.context(timeout=30, checks=chat(0.2, 5)))
    assert r.reason is Reason.TIMEOUT and r.detail == "no first token within 0.2s"
    assert r.ttft is None


async def test_tokens_that_stop_are_a_stall(server: LocalServer) -> None:
    server.post(CHAT).handle(paced(server, [], hang_after=2))
    r = await probe_chat(server.context(timeout=30, checks=chat(5, 0.2)))
    assert r.reason is Reason.TIMEOUT and r.detail == "stream stalled: no chunk for 0.2s"
    assert r.ttft is not None and r.content == "Par"


async def test_slow_first_token_then_steady_tokens_pass(server: LocalServer) -> None:
    """Overloaded, not hung: the first token late (within ttft_timeout), then each chunk
    within the gap although the whole answer takes longer than either."""
    pauses = [0.0, 0.3, 0.15, 0.15, 0.15, 0.15]
    server.post(CHAT).handle(paced(server, pauses))
    r = await probe_chat(server.context(timeout=30, checks=chat(1.0, 0.5)))
    assert r.success, r.detail
    assert r.ttft is not None and r.ttft >= 0.3


async def test_deadlines_off_leave_the_total_timeout(server: LocalServer) -> None:
    server.post(CHAT).handle(paced(server, [], hang_after=1))
    r = await probe_chat(server.context(timeout=0.3, checks=chat(None, None)))
    assert r.reason is Reason.TIMEOUT and r.detail == "no complete answer within 0.3s"
