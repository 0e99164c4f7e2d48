"""The real exporter (its runtime, real probes) against a real llama-server on a tiny model:
up with a TTFT; without --metrics no engine view and no failure noise; one slot with a queue
of long generations kept full is `overloaded`, never down or degraded, and straight back to
`up`; SIGSTOP is `down`, SIGCONT straight back to `up`; SIGKILL is `down`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from exporter.config import Settings, TargetConfig
from tests.core.live import running_exporter, scrape
from tests.realserver.conftest import ALIAS, LlamaServer
from tests.waiting import wait_for

FAST = {"failures_to_down": 3, "retry_interval": 0.2, "successes_to_up": 1}


def target(url: str, **engine: Any) -> TargetConfig:
    return TargetConfig(
        name="llama",
        url=url,
        model=ALIAS,
        interval=1.0,
        thresholds=FAST,
        checks={
            "health": {"timeout": 1.0},
            "models": {"timeout": 2.0},
            "chat": {
                "prompt": "Say something.",  # random weights: no expected answer
                "max_tokens": 4,
                "timeout": 4.0,
                "ttft_timeout": 2.0,
                "chunk_timeout": 2.0,
            },
            "engine": {"interval": 0.5, "timeout": 1.0, **engine},
        },
    )


def settings(tmp_path: Path, t: TargetConfig) -> Settings:
    return Settings(targets=[t], default_interval=1.0, history_file=tmp_path / "h.jsonl")


async def view(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        targets: list[dict[str, Any]] = (await c.get(base + "/api/v1/targets")).json()["targets"]
        return targets[0]


def moves(tmp_path: Path) -> list[tuple[str, str, str]]:
    path = tmp_path / "h.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(r["from"], r["to"], r["reason"]) for r in map(json.loads, lines)]


async def state_is(base: str, state: str) -> bool:
    return (await view(base))["state"] == state


async def test_up_with_a_ttft_and_the_engine_view(
    llama_server: Callable[..., LlamaServer], tmp_path: Path
) -> None:
    server = llama_server("--metrics", "-np", "2", "-c", "2048")
    async with running_exporter(settings(tmp_path, target(server.url))) as (_, base):
        await wait_for(lambda: state_is(base, "up"), timeout=60)
        v = await view(base)
        assert v["checks"]["chat"]["ttft_seconds"] > 0
        assert v["checks"]["models"]["success"]

        async def decoding() -> dict[str, Any] | None:
            engine = await _engine(base)
            return engine if engine is not None and (engine["progress"] or 0) > 0 else None

        # progress: llama_decode() calls of the probes' chats
        engine = await wait_for(decoding, timeout=20, what="llama-server's engine view moving")
        assert engine["flavour"] == "llamacpp" and engine["kv_usage"] is None
        text = await scrape(base)
        assert 'llm_engine_requests_running{target="llama"}' in text


async def _engine(base: str) -> dict[str, Any] | None:
    check = (await view(base))["checks"].get("engine")
    return check.get("engine") if check else None


async def test_without_metrics_no_engine_view_and_no_failure_noise(
    llama_server: Callable[..., LlamaServer], tmp_path: Path
) -> None:
    server = llama_server("-np", "1", "-c", "2048")
    async with running_exporter(settings(tmp_path, target(server.url))) as (_, base):
        await wait_for(lambda: state_is(base, "up"), timeout=60)
        check = (await view(base))["checks"]["engine"]
        assert check["success"] and "no engine view" in check["detail"]
        assert "--metrics" in check["detail"]
        await asyncio.sleep(3)  # six engine intervals: asked again only once a minute
        again = (await view(base))["checks"]["engine"]
        assert again["timestamp"] == check["timestamp"]
        text = await scrape(base)
        noise = [
            line
            for line in text.splitlines()
            if line.startswith("llm_probe_failures_total{") and 'check="engine"' in line
        ]
        assert all(line.endswith(" 0") for line in noise), noise
        assert moves(tmp_path) == [("unknown", "up", "all_checks_passed")]


@contextlib.asynccontextmanager
async def long_generations(url: str, queued: int) -> AsyncIterator[None]:
    """Keep `queued` long generations in flight (one slot: all but one wait)."""

    async def one(c: httpx.AsyncClient) -> None:
        body = {"prompt": "the heart", "n_predict": 8000, "ignore_eos": True, "temperature": 1}
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await c.post(url + "/completion", json=body, timeout=300)

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=queued + 2)) as c:
        tasks = [asyncio.create_task(one(c)) for _ in range(queued)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_slot_with_a_full_queue_is_overloaded_then_straight_back_up(
    llama_server: Callable[..., LlamaServer], tmp_path: Path
) -> None:
    server = llama_server("--metrics", "-np", "1", "-c", "8192")
    t = target(server.url, queue_saturated=2)
    async with running_exporter(settings(tmp_path, t)) as (_, base):
        await wait_for(lambda: state_is(base, "up"), timeout=60)
        async with long_generations(server.url, queued=4):
            await wait_for(lambda: state_is(base, "overloaded"), timeout=90)
            v = await view(base)
            assert "engine busy, not broken" in v["detail"]
            assert v["checks"]["engine"]["engine"]["waiting"] >= 2
        await wait_for(lambda: state_is(base, "up"), timeout=120)
    seen = moves(tmp_path)
    assert [to for _, to, _ in seen] == ["up", "overloaded", "up"], seen


async def test_stopped_is_down_continued_is_straight_back_up_killed_is_down(
    llama_server: Callable[..., LlamaServer], tmp_path: Path
) -> None:
    server = llama_server("--metrics", "-np", "1", "-c", "2048")
    async with running_exporter(settings(tmp_path, target(server.url))) as (_, base):
        await wait_for(lambda: state_is(base, "up"), timeout=60)
        server.signal(signal.SIGSTOP)
        await wait_for(lambda: state_is(base, "down"), timeout=60)
        server.signal(signal.SIGCONT)
        await wait_for(lambda: state_is(base, "up"), timeout=60)
        server.signal(signal.SIGKILL)
        await wait_for(lambda: state_is(base, "down"), timeout=60)
    seen = moves(tmp_path)
    assert [(a, b) for a, b, _ in seen] == [
        ("unknown", "up"),
        ("up", "down"),
        ("down", "up"),
        ("up", "down"),
    ], seen
