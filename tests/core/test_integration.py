"""The real exporter (uvicorn, aiohttp transport) against the simulated vLLM server over
loopback: what a user sees on /metrics, the status API and the history file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from exporter.config import Settings, TargetConfig
from exporter.simulate import FaultSpec, Simulator
from tests.conftest import free_port, require_binary
from tests.waiting import wait_for

from .live import running_exporter, samples, scrape, value

FAST = {"failures_to_down": 3, "retry_interval": 0.2}


def settings_for(
    tmp_path: Path, *targets: TargetConfig, interval: float = 1.0, detail: str = "compact"
) -> Settings:
    return Settings(
        targets=list(targets),
        default_interval=interval,
        history_file=tmp_path / "history.jsonl",
        metrics={"detail": detail},
    )


async def test_healthy_target_then_outage_then_recovery(sim: Simulator, tmp_path: Path) -> None:
    target = TargetConfig(name="qwen", url=sim.url, thresholds=FAST)
    async with running_exporter(settings_for(tmp_path, target, detail="full")) as (_, base):

        async def up() -> bool:
            return value(await scrape(base), "llm_target_up", target="qwen") == 1.0

        await wait_for(up)
        text = await scrape(base)
        assert value(text, "llm_probe_success", target="qwen", check="chat") == 1.0
        assert value(text, "llm_target_state", target="qwen", state="up") == 1.0
        assert value(text, "llm_probe_http_status_code", target="qwen", check="health") == 200
        assert (value(text, "llm_probe_ttft_seconds_count", target="qwen") or 0) >= 1
        assert (
            value(
                text,
                "llm_target_info",
                target="qwen",
                url=sim.url,
                model="Qwen/Qwen3-4B-Instruct-2507",
            )
            == 1.0
        )  # discovered from /v1/models
        assert (value(text, "llm_probe_tokens_total", target="qwen", kind="completion") or 0) > 0
        ttft = value(text, "llm_probe_phase_seconds", target="qwen", check="chat", phase="ttft")
        assert ttft is not None and ttft > 0  # metrics.detail: full shows the phases

        sim.set_fault(FaultSpec(kind="hang"))

        async def down() -> bool:
            return value(await scrape(base), "llm_target_state", target="qwen", state="down") == 1.0

        await wait_for(down, timeout=40)
        text = await scrape(base)
        assert value(
            text, "llm_probe_failures_total", target="qwen", check="health", reason="timeout"
        )
        async with httpx.AsyncClient() as c:
            api = (await c.get(base + "/api/v1/targets")).json()
        t = api["targets"][0]
        assert t["state"] == "down" and t["checks"]["health"]["reason"] == "timeout"
        assert [x["to"] for x in t["transitions"]][-2:] == ["up", "down"]

        sim.clear_faults()
        await wait_for(up, timeout=40)
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [(r["from"], r["to"]) for r in lines] == [
        ("unknown", "up"),
        ("up", "down"),
        ("down", "up"),
    ]
    assert all({"time", "target", "reason", "detail"} <= r.keys() for r in lines)


async def test_health_lies_is_degraded_not_up(sim: Simulator, tmp_path: Path) -> None:
    target = TargetConfig(
        name="liar", url=sim.url, thresholds=FAST, checks={"chat": {"timeout": 1.0}}
    )
    sim.set_fault(FaultSpec(kind="health_lies"))
    async with running_exporter(settings_for(tmp_path, target)) as (_, base):

        async def degraded() -> bool:
            return (
                value(await scrape(base), "llm_target_state", target="liar", state="degraded")
                == 1.0
            )

        await wait_for(degraded, timeout=40)
        text = await scrape(base)
        assert value(text, "llm_probe_success", target="liar", check="health") == 1.0
        assert value(text, "llm_target_up", target="liar") == 0.0


async def test_nothing_listening_is_down_not_a_crash(tmp_path: Path) -> None:
    target = TargetConfig(name="void", url=f"http://127.0.0.1:{free_port()}", thresholds=FAST)
    async with running_exporter(settings_for(tmp_path, target)) as (_, base):

        async def down() -> bool:
            return value(await scrape(base), "llm_target_state", target="void", state="down") == 1.0

        await wait_for(down)
        text = await scrape(base)
        assert value(
            text, "llm_probe_failures_total", target="void", check="health", reason="connect_error"
        )
        async with httpx.AsyncClient() as c:
            assert (await c.get(base + "/-/healthy")).status_code == 200
            assert (await c.get(base + "/-/ready")).status_code == 200


async def test_metrics_pass_promtool(sim: Simulator, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    target = TargetConfig(name="qwen", url=sim.url, thresholds=FAST)
    async with running_exporter(settings_for(tmp_path, target)) as (_, base):
        await wait_for(lambda: _has_chat(base))
        text = await scrape(base)
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def _has_chat(base: str) -> bool:
    return (
        value(await scrape(base), "llm_probe_duration_seconds_count", target="qwen", check="chat")
        or 0
    ) >= 1


async def test_reload_keeps_state_and_rejects_bad_config(sim: Simulator, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(f"default_interval: 1\ntargets:\n  - name: a\n    url: {sim.url}\n")
    from exporter.config import load_config

    settings = load_config(cfg).model_copy(update={"history_file": tmp_path / "h.jsonl"})
    async with running_exporter(settings, cfg) as (_, base):
        await wait_for(lambda: _probes(base, "a"))
        before = await _probes(base, "a")
        cfg.write_text(
            f"default_interval: 1\ntargets:\n  - name: a\n    url: {sim.url}\n"
            f"  - name: b\n    url: {sim.url}\n"
        )
        async with httpx.AsyncClient() as c:
            r = await c.post(base + "/-/reload")
            assert r.status_code == 200, r.text
            await wait_for(lambda: _probes(base, "b"))
            assert await _probes(base, "a") >= before  # counters of the unchanged target survive
            cfg.write_text("targets: [{name: a, url: 'nope'}]\n")
            r = await c.post(base + "/-/reload")
            assert r.status_code == 400 and "targets[0]" in r.json()["message"]
        text = await scrape(base)
        assert value(text, "llm_exporter_config_last_reload_successful") == 0.0
        assert value(text, "llm_exporter_targets") == 2.0


async def _probes(base: str, name: str) -> float:
    return (
        value(await scrape(base), "llm_probe_duration_seconds_count", target=name, check="health")
        or 0.0
    )


async def test_api_key_never_appears_in_metrics_or_api(sim: Simulator, tmp_path: Path) -> None:
    target = TargetConfig(
        name="k",
        url=sim.url.replace("http://", "http://user:pw-secret@"),
        api_key="sk-very-secret",
        thresholds=FAST,
    )
    async with running_exporter(settings_for(tmp_path, target)) as (_, base):
        await wait_for(lambda: _probes(base, "k"))
        text = await scrape(base)
        async with httpx.AsyncClient() as c:
            api = (await c.get(base + "/api/v1/targets")).text
    for blob in (text, api):
        assert "sk-very-secret" not in blob and "pw-secret" not in blob
    assert any(k[0] == "llm_target_info" for k in samples(text))
