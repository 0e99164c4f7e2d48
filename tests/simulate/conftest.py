"""The default probe request and a client of the `sim` fixture (tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from exporter.simulate import Simulator

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


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10.0) as c:
        yield c
