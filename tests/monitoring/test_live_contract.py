"""Rules and dashboards against what really runs: every metric they use is exported by a live
exporter (or by the vLLM server it watches), and every dashboard query returns data when a real
Prometheus scrapes a running exporter and the simulated vLLM server."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Settings, TargetConfig
from exporter.simulate import Simulator, SimulatorConfig
from tests.conftest import found, free_port, require_binary
from tests.core.live import running_exporter
from tests.core.shapes import Seen, litellm_app
from tests.monitoring.metric_names import metric_names_used
from tests.monitoring.sources import PROMETHEUS_DIR, dashboard_expressions
from tests.servers import serve_aiohttp
from tests.waiting import wait_for

_SUFFIXES = ("_bucket", "_sum", "_count")
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
# a panel filtered with "> 0" shows events (failures, recovery actions): empty while none happen
_EVENT_ONLY = re.compile(r">\s*0\s*\)?\s*$")


def _names(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.add(sample.name)
            for suffix in _SUFFIXES:
                if sample.name.endswith(suffix):
                    names.add(sample.name[: -len(suffix)])
    return names


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[str, Simulator]]:
    sim = Simulator(SimulatorConfig(port=0, ttft_seconds=0.02, token_interval_seconds=0.02))
    await sim.start()
    # a gateway answering 429 (LiteLLM's wire format): its rate-limited series exist too
    gateway = serve_aiohttp(litellm_app(Seen(busy=True)))
    gateway_url = await gateway.__aenter__()
    settings = Settings(
        targets=[
            TargetConfig(name="qwen", url=sim.url, checks={"engine": {"interval": 1.0}}),
            TargetConfig(
                name="gone",
                url=f"http://127.0.0.1:{free_port()}",
                thresholds={"retry_interval": 0.2},
            ),
            TargetConfig(name="gateway", url=gateway_url),
        ],
        default_interval=1.0,
        history_file=tmp_path / "h.jsonl",
        # a target in maintenance, so its series exists as it would in production
        maintenance=[{"targets": ["gone"], "start": datetime.now(UTC), "duration": "1d"}],
        recovery={  # a dry-run rule, so the recovery series exist as they would in production
            "enabled": True,
            "dry_run": True,
            "auth": {"allow_unauthenticated_loopback": True},
            "rules": [
                {
                    "name": "restart",
                    "match": {"alertnames": ["LLMTargetDown"]},
                    "action": {"type": "command", "argv": ["/bin/true"]},
                }
            ],
        },
    )
    try:
        async with running_exporter(settings) as (_, base):
            yield base, sim
    finally:
        await gateway.__aexit__(None, None, None)
        await sim.stop()


async def test_every_metric_rules_and_dashboards_use_is_exported(
    live: tuple[str, Simulator],
) -> None:
    base, sim = live
    async with httpx.AsyncClient() as client:

        async def probed() -> bool:
            text = (await client.get(base + "/metrics")).text
            return (
                "llm_probe_output_tokens_per_second{" in text
                and 'reason="connect_error"' in text
                and "llm_engine_generation_tokens_per_second{" in text  # two engine samples
                and "llm_target_rate_limited{" in text
            )

        await wait_for(probed)
        ours = _names((await client.get(base + "/metrics")).text)
        vllm = _names((await client.get(sim.url + "/metrics")).text)
    used = metric_names_used()
    missing = sorted(n for n in used if n not in ours and n not in vllm)
    assert not missing, f"used by rules/dashboards but not exported: {missing}"
    assert {"llm_target_state", "llm_probe_ttft_seconds", "vllm:num_requests_waiting"} <= used


async def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    live: tuple[str, Simulator], tmp_path: Path
) -> None:
    prometheus = require_binary("prometheus")
    base, sim = live
    rules_dir = PROMETHEUS_DIR / "rules"
    profile = [*rules_dir.glob("*.yml"), *(rules_dir / "fast").glob("*.yml")]
    rules = [str(p) for p in found(profile, "rule files of the fast profile")]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rules,
        "scrape_configs": [
            {
                "job_name": "llm-heartbeat",
                "static_configs": [{"targets": [base.removeprefix("http://")]}],
            },
            {
                "job_name": "vllm",
                "static_configs": [{"targets": [sim.url.removeprefix("http://")]}],
            },
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    api = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def query(expr: str) -> list[object]:
                try:
                    body = (await client.get(api, params={"query": expr})).json()
                except (httpx.HTTPError, ValueError):  # not up yet
                    return []
                assert body["status"] == "success", f"{expr}: {body}"
                return list(body["data"]["result"])

            # enough scrapes for rate() and the recording rules to have two points
            await wait_for(
                lambda: query("count_over_time(llm_probe_duration_seconds_count[1m]) >= 6"),
                timeout=60,
            )
            await wait_for(lambda: query("target:llm_probe_ttft_seconds:p95_rate5m"), timeout=60)
            # the SLO group has its own 15 s interval
            await wait_for(lambda: query("target:llm_availability:ratio_rate5m"), timeout=60)
            await wait_for(lambda: query("vllm:e2e_request_latency_seconds_count > 0"), timeout=60)
            empty = []
            for expression in dashboard_expressions(include_variables=False):
                expr = _substitute(expression.expr)
                if not await query(expr) and not _EVENT_ONLY.search(expr):
                    empty.append(expression.source)
            assert not empty, f"dashboard queries without data: {empty}"
    finally:
        proc.terminate()
        proc.wait(10)


def _substitute(expr: str) -> str:
    values = {
        "target": "qwen",
        "model": "Qwen/Qwen3-4B-Instruct-2507",
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": "1h",
    }

    def value(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        return m.group(0) if name.isdigit() else values[name]  # $1: label_replace's group

    return _VAR.sub(value, expr)


def test_substitution_covers_the_dashboards_variables() -> None:
    for expression in dashboard_expressions(include_variables=False):
        left = re.sub(r"\$\d", "", _substitute(expression.expr))  # label_replace's $1 stays
        assert "$" not in left, expression.source
