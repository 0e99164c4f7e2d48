"""Fixtures: a started simulator on a free loopback port, and the default probe request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from exporter.simulate import Simulator, SimulatorConfig

MODEL = "Qwen/Qwen3-4B-Instruct-2507"
PROBE_BODY: dict[str, Any] = {
    "model": MODEL,
    "messages": [
        {"role": "user", "content": "Reply with exactly one word: the capital of France."}
    ],
    "temperature": 0,
    "seed": 0,
    "max_tokens": 8,
}


def stream_body(**extra: Any) -> dict[str, Any]:
    return {**PROBE_BODY, "stream": True, "stream_options": {"include_usage": True}, **extra}


async def read_events(response: httpx.Response) -> list[Any]:
    """SSE `data:` payloads in order: parsed JSON, or the literal "[DONE]"."""
    events: list[Any] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll an async predicate until true (generous deadline for a noisy machine)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def config() -> SimulatorConfig:
    return SimulatorConfig(port=0, ttft_seconds=0.01, token_interval_seconds=0.005)


@pytest.fixture
async def sim(config: SimulatorConfig) -> AsyncIterator[Simulator]:
    simulator = Simulator(config)
    await simulator.start()
    await simulator.wait_ready()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10.0) as c:
        yield c
