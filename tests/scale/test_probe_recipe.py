"""The documented /probe relabelling recipe, run by the real Prometheus against the exporter
and the simulator: what docs/scaling.md tells users to paste really works."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import yaml

from exporter.config import Settings
from exporter.simulate import Simulator
from tests.core.live import running_exporter
from tests.waiting import wait_for

from .helpers import prometheus

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "deploy" / "prometheus" / "probe-job.yml"


def test_docs_show_the_tested_recipe() -> None:
    body = RECIPE.read_text().split("scrape_configs:", 1)[1]
    assert "scrape_configs:" + body in (REPO / "docs" / "scaling.md").read_text()


async def test_prometheus_probes_through_the_recipe(sim: Simulator, tmp_path: Path) -> None:
    address = sim.url.removeprefix("http://")
    sd = tmp_path / "llm-targets"
    sd.mkdir()
    (sd / "t.json").write_text(json.dumps([{"targets": [address], "labels": {"name": "qwen"}}]))
    settings = Settings(
        history_file=None, probe={"modules": {"vllm": {}}, "allowed_targets": ["127.0.0.0/8"]}
    )
    async with running_exporter(settings) as (_, base):
        config = yaml.safe_load(RECIPE.read_text())
        job = config["scrape_configs"][0]
        job["scrape_interval"] = job["scrape_timeout"] = "1s"
        job["file_sd_configs"][0]["files"] = [str(sd / "*.json")]
        assert job["relabel_configs"][-1]["replacement"] == "llm-heartbeat:8001"
        job["relabel_configs"][-1]["replacement"] = base.removeprefix("http://")
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        with prometheus(tmp_path, config) as prom:

            async def query(expr: str) -> list[dict] | None:
                try:
                    async with httpx.AsyncClient() as c:
                        r = await c.get(prom + "/api/v1/query", params={"query": expr})
                except httpx.HTTPError:
                    return None
                if r.status_code != 200:
                    return None
                return r.json()["data"]["result"] or None

            ok = await wait_for(lambda: query('probe_success{job="llm-probe"} == 1'), timeout=45)
            assert ok[0]["metric"]["instance"] == address
            up = await wait_for(lambda: query('llm_target_up{job="llm-probe"}'), timeout=30)
    labels = up[0]["metric"]
    assert labels["target"] == "qwen" and labels["instance"] == address
    assert "exported_target" not in labels
    assert up[0]["value"][1] == "1"
