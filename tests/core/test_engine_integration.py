"""The real exporter against the simulated vLLM with the engine faults: a stalled engine is
degraded while /health answers 200 and before the chat deadline; an overloaded one is
`overloaded`, never degraded or down; a server without /metrics is simply up."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from exporter.config import Settings, TargetConfig
from exporter.simulate import FaultSpec, Simulator
from tests.waiting import wait_for

from .live import running_exporter, scrape, value

FAST = {"failures_to_down": 3, "retry_interval": 0.2}


def settings_for(tmp_path: Path, target: TargetConfig) -> Settings:
    return Settings(targets=[target], default_interval=1.0, history_file=tmp_path / "h.jsonl")


async def api_target(base: str) -> dict:
    async with httpx.AsyncClient() as c:
        return (await c.get(base + "/api/v1/targets")).json()["targets"][0]


def history(tmp_path: Path) -> list[tuple[str, str, str]]:
    lines = (tmp_path / "h.jsonl").read_text().splitlines()
    return [(r["from"], r["to"], r["reason"]) for r in map(json.loads, lines)]


async def test_stalled_engine_is_degraded_before_the_chat_deadline(
    sim: Simulator, tmp_path: Path
) -> None:
    target = TargetConfig(
        name="qwen",
        url=sim.url,
        thresholds=FAST,
        checks={
            # the chat probe cannot decide within this test
            "chat": {"timeout": 60, "ttft_timeout": 60, "chunk_timeout": 60},
            "engine": {"interval": 0.3, "stall_after": 2},
        },
    )
    async with running_exporter(settings_for(tmp_path, target)) as (_, base):

        async def state_is(name: str) -> bool:
            return value(await scrape(base), "llm_target_state", target="qwen", state=name) == 1

        await wait_for(lambda: state_is("up"))
        text = await scrape(base)
        assert value(text, "llm_engine_requests_waiting", target="qwen") == 0
        assert value(text, "llm_engine_progress_age_seconds", target="qwen") == 0

        sim.set_fault(FaultSpec(kind="stall", after_tokens=0, running=2))
        await wait_for(lambda: state_is("degraded"), timeout=30)
        text = await scrape(base)
        assert value(text, "llm_probe_success", target="qwen", check="health") == 1
        assert value(text, "llm_probe_consecutive_failures", target="qwen", check="chat") == 0
        assert (value(text, "llm_engine_progress_age_seconds", target="qwen") or 0) >= 2
        assert (value(text, "llm_engine_requests_running", target="qwen") or 0) >= 2
        view = await api_target(base)
        assert view["reason"] == "engine_stalled" and "no progress for" in view["detail"]
        assert view["checks"]["engine"]["engine"]["flavour"] == "vllm"

        sim.clear_faults()
        await wait_for(lambda: state_is("up"), timeout=60)
    assert ("up", "degraded", "engine_stalled") in history(tmp_path)


async def test_overloaded_engine_is_busy_not_broken(sim: Simulator, tmp_path: Path) -> None:
    target = TargetConfig(
        name="qwen",
        url=sim.url,
        thresholds=FAST,
        checks={"chat": {"timeout": 1.5}, "engine": {"interval": 0.3}},
    )
    async with running_exporter(settings_for(tmp_path, target)) as (_, base):

        async def state_is(name: str) -> bool:
            return value(await scrape(base), "llm_target_state", target="qwen", state=name) == 1

        await wait_for(lambda: state_is("up"))
        sim.set_fault(FaultSpec(kind="overload", waiting=40, seconds=5))
        await wait_for(lambda: state_is("overloaded"), timeout=40)
        text = await scrape(base)
        assert value(text, "llm_target_up", target="qwen") == 0
        assert (value(text, "llm_engine_requests_waiting", target="qwen") or 0) >= 40
        assert (value(text, "llm_engine_kv_cache_usage_ratio", target="qwen") or 0) >= 0.9
        assert (value(text, "llm_engine_generation_tokens_per_second", target="qwen") or 0) > 0
        view = await api_target(base)
        assert view["checks"]["chat"]["reason"] == "timeout"
        assert "engine busy, not broken" in view["detail"]
        sim.clear_faults()
        await wait_for(lambda: state_is("up"), timeout=40)
    moves = history(tmp_path)
    assert any(to == "overloaded" for _, to, _ in moves)
    assert not [m for m in moves if m[1] in ("degraded", "down")], moves


async def test_no_metrics_page_is_no_engine_view_not_a_fault(
    sim: Simulator, tmp_path: Path
) -> None:
    target = TargetConfig(
        name="qwen", url=sim.url, checks={"engine": {"path": "/no-metrics-here", "interval": 0.3}}
    )
    async with running_exporter(settings_for(tmp_path, target)) as (_, base):

        async def engine_check() -> dict | None:
            return (await api_target(base))["checks"].get("engine")

        first = await wait_for(engine_check)
        assert first["success"] and "no engine view" in first["detail"], first
        await asyncio.sleep(2.0)  # seven engine intervals: no view is asked again once a minute
        assert (await engine_check())["timestamp"] == first["timestamp"]
        text = await scrape(base)
        engine_failures = [
            line
            for line in text.splitlines()
            if line.startswith("llm_probe_failures_total{") and 'check="engine"' in line
        ]
        assert all(line.endswith(" 0") for line in engine_failures), engine_failures
        assert value(text, "llm_target_state", target="qwen", state="up") == 1
        assert value(text, "llm_engine_requests_running", target="qwen") is None
        view = await api_target(base)
        assert view["state"] == "up"
