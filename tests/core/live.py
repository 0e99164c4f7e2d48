"""A real exporter process-in-a-task: uvicorn on a free loopback port, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Settings
from exporter.runtime import Exporter
from exporter.server.serve import server_config
from tests.conftest import free_port


@contextlib.asynccontextmanager
async def running_exporter(
    settings: Settings, config_path: Any = None
) -> AsyncIterator[tuple[Exporter, str]]:
    port = free_port()
    settings = settings.model_copy(update={"listen": f"127.0.0.1:{port}"})
    exporter = Exporter(settings, config_path)
    await exporter.start()
    server = uvicorn.Server(server_config(exporter.app, "127.0.0.1", port))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        yield exporter, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await exporter.stop()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


async def scrape(base: str) -> str:
    async with httpx.AsyncClient() as c:
        r = await c.get(base + "/metrics")
        r.raise_for_status()
        return r.text
