"""End to end, as a new user runs it (issue 27): `run --target URL` and `probe URL` in real
subprocesses against Ollama, a server without /health and a rate-limiting LiteLLM gateway
(tests/core/shapes.py: fakes in each server's own wire format)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from tests.core.live import value
from tests.core.shapes import Seen, litellm_app, llama_cpp_python_app, ollama_app
from tests.servers import serve_aiohttp

EXE = [sys.executable, "-m", "exporter.cli"]


async def _probe(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *EXE,
        "probe",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _line(out: str, check: str) -> str:
    found = [line for line in out.splitlines() if line.startswith(f"{check} ")]
    assert len(found) == 1, out
    return found[0]


# ---- probe ---------------------------------------------------------------------------------
async def test_probe_ollama_is_healthy_with_its_own_liveness() -> None:
    seen = Seen()
    async with serve_aiohttp(ollama_app(seen)) as url:
        code, out, err = await _probe(url)
    assert code == 0, out + err
    assert out.splitlines()[-1] == "healthy"
    assert " ok " in _line(out, "health") and "Paris" in _line(out, "chat")
    assert "/health" not in seen.paths() and "/api/version" in seen.paths()


async def test_probe_a_server_without_health_goes_on_to_the_chat_and_is_healthy() -> None:
    seen = Seen()
    async with serve_aiohttp(llama_cpp_python_app(seen)) as url:
        code, out, err = await _probe(url)
        json_code, json_out, _ = await _probe(url, "--json")
    assert code == 0, out + err
    assert out.splitlines()[-1] == "healthy"
    health = _line(out, "health")
    assert "n/a" in health and "404" in health and "not_offered" in health, health
    assert "Paris" in _line(out, "chat")
    report = json.loads(json_out)
    assert json_code == 0 and report["verdict"] == "healthy" and report["not_offered"] == ["health"]
    assert report["checks"]["health"]["offered"] is False


async def test_probe_without_health_and_without_chat_is_a_usage_error() -> None:
    async with serve_aiohttp(llama_cpp_python_app(Seen())) as url:
        code, out, err = await _probe(url, "--no-chat")
    assert code == 2, out + err
    assert "does not offer health" in err and "proves inference" in err


async def test_probe_a_rate_limited_gateway_is_busy_not_unhealthy() -> None:
    seen = Seen(busy=True)
    async with serve_aiohttp(litellm_app(seen)) as url:
        code, out, err = await _probe(url)
    assert code == 4, out + err
    assert out.splitlines()[-1] == "BUSY (rate limited)"
    chat = _line(out, "chat")
    assert "BUSY" in chat and "429" in chat and "rate_limited" in chat, chat
    assert "/health" not in seen.paths()  # LiteLLM's /health calls every model


# ---- run --target --------------------------------------------------------------------------
@asynccontextmanager
async def _run(tmp_path: Path, *args: str) -> AsyncIterator[str]:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "LLM_HEARTBEAT_HISTORY_FILE": str(tmp_path / "history.jsonl"),
        "LLM_HEARTBEAT_DEFAULT_INTERVAL": "1",
    }
    log = (tmp_path / "log.txt").open("wb")
    proc = await asyncio.create_subprocess_exec(
        *EXE, "run", "--listen", f"127.0.0.1:{port}", *args, env=env, stderr=log, cwd=tmp_path
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        log.close()


async def _until(
    base: str, what: Callable[[dict[str, Any], str], bool], log: Path, seconds: float = 60
) -> tuple[dict[str, Any], str]:
    """Poll the exporter's API and /metrics until `what(target, metrics)` holds."""
    target: dict[str, Any] = {}
    text = ""
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(int(seconds * 5)):
            try:
                targets = (await client.get(f"{base}/api/v1/targets")).json()["targets"]
                text = (await client.get(f"{base}/metrics")).text
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
                continue
            target = targets[0] if targets else {}
            if target and what(target, text):
                return target, text
            await asyncio.sleep(0.2)
    raise AssertionError(f"not reached; last {target}; log: {log.read_text()}")


async def test_run_target_ollama_goes_up(tmp_path: Path) -> None:
    seen = Seen()
    async with serve_aiohttp(ollama_app(seen)) as url, _run(tmp_path, "--target", url) as base:
        target, text = await _until(base, lambda t, _: t["state"] == "up", tmp_path / "log.txt")
    assert target["server"] == "ollama" and target["checks"]["health"]["success"]
    assert value(text, "llm_probe_success", target=target["name"], check="health") == 1.0
    assert "/health" not in seen.paths()  # identified by GET /, then /api/version


async def test_run_target_without_health_goes_up_and_says_not_offered(tmp_path: Path) -> None:
    seen = Seen()
    async with (
        serve_aiohttp(llama_cpp_python_app(seen)) as url,
        _run(tmp_path, "--target", url) as base,
    ):
        target, text = await _until(
            base,
            lambda t, _: t["state"] == "up" and t["checks"]["chat"]["success"],
            tmp_path / "log.txt",
        )
        await asyncio.sleep(3)  # three more rounds at the 1 s interval
        target, text = await _until(base, lambda t, _: True, tmp_path / "log.txt")
    assert target["state"] == "up" and target["reason"] == "all_checks_passed"
    health = target["checks"]["health"]
    assert health["offered"] is False and health["reason"] == "not_offered"
    assert health["summary"] == "not offered by this server (HTTP 404)"
    assert target["consecutive_failures"]["health"] == 0
    assert value(text, "llm_probe_not_offered", target=target["name"], check="health") == 1.0
    assert (
        value(text, "llm_probe_success", target=target["name"], check="health") is None
    )  # neither pass nor fail
    assert value(text, "llm_probe_success", target=target["name"], check="chat") == 1.0
    assert 'reason="not_offered"' not in text  # not counted as a failure
    # asked once, not every second: again in 10 minutes
    assert seen.paths().count("/health") == 1, seen.requests
    assert seen.paths().count("/v1/models") >= 3


async def test_run_rate_limited_gateway_is_overloaded_never_down(tmp_path: Path) -> None:
    seen = Seen(busy=True, retry_after="2")
    config = tmp_path / "config.yml"
    config.write_text(
        "targets:\n"
        "  - name: gateway\n"
        "    url: URL\n"
        "    interval: 10s\n"
        "    thresholds: {failures_to_down: 2, retry_interval: 0.5s}\n"
    )
    async with serve_aiohttp(litellm_app(seen)) as url:
        config.write_text(config.read_text().replace("URL", url))
        async with _run(tmp_path, "--config", str(config)) as base:
            log = tmp_path / "log.txt"
            target, text = await _until(base, lambda t, _: t["state"] == "overloaded", log)
            # four more 429s: still busy, never down or degraded
            await _until(base, lambda *_: len(_chats(seen)) >= 5, log, seconds=120)
            target, text = await _until(base, lambda t, _: True, log)
    assert target["state"] == "overloaded" and target["reason"] == "rate_limited", target
    assert "rate limited" in target["summary"]
    assert target["checks"]["chat"]["retry_after_seconds"] == 2.0
    assert value(text, "llm_target_rate_limited", target="gateway") == 1.0
    assert value(text, "llm_target_transitions_total", target="gateway", to="down") == 0.0
    assert value(text, "llm_target_transitions_total", target="gateway", to="degraded") == 0.0
    assert "/health" not in seen.paths()
    # the next chat waited for Retry-After (2 s), not the 0.5 s retry of a failure
    times = _chats(seen)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps and min(gaps) >= 1.5, gaps


def _chats(seen: Seen) -> list[float]:
    pairs = zip(seen.requests, seen.times, strict=True)
    return [t for (_, path), t in pairs if path == "/v1/chat/completions"]
