"""The chat probe's streaming deadlines: a hung engine is a timeout after `ttft_timeout` (no
first token) or `chunk_timeout` (tokens stopped), long before the total `timeout`; a slow but
flowing answer is not a failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from exporter.probes import probe_chat
from exporter.probes.results import Reason

from .helpers import URL, context, vllm_stream

CHAT = f"{URL}/v1/chat/completions"


class Paced(httpx.AsyncByteStream):
    """vLLM's events, with a pause before each one (or a hang after `hang_after` events)."""

    def __init__(self, pauses: list[float], hang_after: int | None = None) -> None:
        self.pauses = pauses
        self.hang_after = hang_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, event in enumerate(vllm_stream(("Par", "is", "."))):
            if i == self.hang_after:
                await asyncio.sleep(60)
            await asyncio.sleep(self.pauses[i] if i < len(self.pauses) else 0)
            yield event


def stream(body: Paced) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)


def chat(ttft: float | None, gap: float | None) -> dict:
    return {"chat": {"ttft_timeout": ttft, "chunk_timeout": gap}}


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_called=False)


async def test_no_response_at_all_is_a_first_token_timeout(router: respx.Router) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        return httpx.Response(200)

    router.post(CHAT).mock(side_effect=hang)
    r = await probe_chat(context(router, timeout=30, checks=chat(0.2, 5)))
    assert r.reason is Reason.TIMEOUT and r.detail == "no first token within 0.2s"


async def test_role_chunk_then_silence_is_a_first_token_timeout(router: respx.Router) -> None:
    """vLLM sends the role chunk before any token: it is not a first token."""
    router.post(CHAT).mock(return_value=stream(Paced([], hang_after=1)))
    r = await probe_chat(context(router, timeout=30, checks=chat(0.2, 5)))
    assert r.reason is Reason.TIMEOUT and r.detail == "no first token within 0.2s"
    assert r.ttft is None


async def test_tokens_that_stop_are_a_stall(router: respx.Router) -> None:
    router.post(CHAT).mock(return_value=stream(Paced([], hang_after=2)))
    r = await probe_chat(context(router, timeout=30, checks=chat(5, 0.2)))
    assert r.reason is Reason.TIMEOUT and r.detail == "stream stalled: no chunk for 0.2s"
    assert r.ttft is not None and r.content == "Par"


async def test_slow_first_token_then_steady_tokens_pass(router: respx.Router) -> None:
    """Overloaded, not hung: the first token late (within ttft_timeout), then each chunk
    within the gap although the whole answer takes longer than either."""
    pauses = [0.0, 0.3, 0.15, 0.15, 0.15, 0.15]
    router.post(CHAT).mock(return_value=stream(Paced(pauses)))
    r = await probe_chat(context(router, timeout=30, checks=chat(1.0, 0.5)))
    assert r.success, r.detail
    assert r.ttft is not None and r.ttft >= 0.3


async def test_deadlines_off_leave_the_total_timeout(router: respx.Router) -> None:
    router.post(CHAT).mock(return_value=stream(Paced([], hang_after=1)))
    r = await probe_chat(context(router, timeout=0.3, checks=chat(None, None)))
    assert r.reason is Reason.TIMEOUT and r.detail == "no complete answer within 0.3s"
