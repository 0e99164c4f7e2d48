"""The runtime with server profiles (issue 27): SGLang's costly /health is asked at most every
30 s, and `/probe` treats a check the server does not offer as no failure. In-process exporter
(tests/core/live.py) against fakes in each server's own wire format (tests/core/shapes.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.config import Settings, TargetConfig
from tests.core.live import running_exporter, value
from tests.core.shapes import Seen, llama_cpp_python_app, ollama_app, sglang_app
from tests.servers import serve_aiohttp
from tests.waiting import wait_for


def _settings(tmp_path: Path, *targets: TargetConfig, **extra: Any) -> Settings:
    return Settings(
        targets=list(targets),
        default_interval=0.2,
        history_file=tmp_path / "history.jsonl",
        **extra,
    )


@pytest.mark.parametrize("server", ["auto", "sglang"])
async def test_sglang_health_is_asked_rarely(tmp_path: Path, server: str) -> None:
    """Its /health runs a one-token generation: found out from owned_by "sglang" (or
    configured), the health check keeps its 30 s floor while models runs every 0.2 s."""
    seen = Seen()
    async with serve_aiohttp(sglang_app(seen)) as url:
        target = TargetConfig(
            name="sg",
            url=url,
            server=server,
            checks={"chat": {"enabled": False}, "engine": {"enabled": False}},
        )
        async with running_exporter(_settings(tmp_path, target)) as (exporter, _):
            await wait_for(lambda: seen.paths().count("/v1/models") >= 10, 60)
            rt = exporter.monitor.targets["sg"]
            assert rt.status.state.value == "up", rt.status
            assert rt.server == "sglang"
    health = seen.paths().count("/health")
    # without the floor: one every 0.2 s, like models
    assert 1 <= health <= (1 if server == "sglang" else 2), seen.requests


async def test_probe_endpoint_without_health_succeeds_on_the_other_checks(tmp_path: Path) -> None:
    seen = Seen()
    async with serve_aiohttp(llama_cpp_python_app(seen)) as url:
        settings = _settings(
            tmp_path, probe={"modules": {"llm": {}}, "allowed_targets": ["127.0.0.0/8"]}
        )
        async with running_exporter(settings) as (_, base), httpx.AsyncClient(timeout=60) as c:
            address = url.removeprefix("http://")
            r = await c.get(f"{base}/probe", params={"target": address, "module": "llm"})
    assert r.status_code == 200, r.text
    assert value(r.text, "probe_success") == 1.0, r.text
    assert value(r.text, "llm_probe_not_offered", target=address, check="health") == 1.0
    assert value(r.text, "llm_probe_success", target=address, check="health") is None
    assert value(r.text, "llm_probe_success", target=address, check="chat") == 1.0


async def test_probe_endpoint_module_says_the_server(tmp_path: Path) -> None:
    seen = Seen()
    async with serve_aiohttp(ollama_app(seen)) as url:
        settings = _settings(
            tmp_path,
            probe={"modules": {"ollama": {"server": "ollama"}}, "allowed_targets": ["127.0.0.0/8"]},
        )
        async with running_exporter(settings) as (_, base), httpx.AsyncClient(timeout=60) as c:
            address = url.removeprefix("http://")
            r = await c.get(f"{base}/probe", params={"target": address, "module": "ollama"})
    assert value(r.text, "probe_success") == 1.0, r.text
    assert seen.paths().count("/api/version") == 1 and "/" not in seen.paths()
