"""The series-per-target figures the docs give (docs/metrics.md, README, the example config)
are what a real exporter exports for a healthy target (issue 22: the example said "~50",
62 were measured). The real exporter against the simulated vLLM server over loopback."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from exporter.config import Settings, TargetConfig
from exporter.simulate import Simulator
from tests.waiting import wait_for

from .live import running_exporter, scrape

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> dict[tuple[str, bool], int]:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    compact = re.search(r"`compact` \(the default\) exports (\d+) series .*? and (\d+) with the "
                        r"engine check\s+off", text, re.S)  # fmt: skip
    full = re.search(r"\((\d+) series for a healthy target\s+with four checks, (\d+) with three\)",
                     text)  # fmt: skip
    assert compact and full, "docs/metrics.md no longer states the figures"
    return {
        ("compact", True): int(compact.group(1)),
        ("compact", False): int(compact.group(2)),
        ("full", True): int(full.group(1)),
        ("full", False): int(full.group(2)),
    }


def test_readme_and_example_quote_the_same_figures() -> None:
    documented = _documented()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = (ROOT / "examples" / "llm-heartbeat.yml").read_text(encoding="utf-8")
    compact, full = documented[("compact", True)], documented[("full", True)]
    assert f"exports {compact} series for a healthy target" in readme
    assert f"`full` {full}" in readme
    assert f"# {compact} series for a healthy target" in example and f"`full` ({full})" in example


@pytest.mark.parametrize(("detail", "engine"), [("compact", True), ("compact", False),
                                                 ("full", True), ("full", False)])  # fmt: skip
async def test_series_per_healthy_target_as_documented(
    sim: Simulator, detail: str, engine: bool
) -> None:
    target = TargetConfig(
        name="t", url=sim.url, checks={"engine": {"enabled": engine, "interval": 0.5}}
    )
    settings = Settings(targets=[target], default_interval=0.5, history_file=None,
                        metrics={"detail": detail})  # fmt: skip
    want = _documented()[(detail, engine)]
    counts: list[int] = []
    async with running_exporter(settings) as (_, base):

        async def as_documented() -> bool:
            text = await scrape(base)
            series = [
                ln for ln in text.splitlines() if not ln.startswith("#") and 'target="t"' in ln
            ]
            counts.append(len(series))
            return 'llm_target_up{target="t"} 1.0' in text and len(series) >= want

        # steady once every check has answered (a gauge such as the decode speed appears with
        # the first chat answer that had two timed chunks)
        await wait_for(as_documented, timeout=30)
        await asyncio.sleep(1.0)  # more rounds of every check add nothing
        await as_documented()
    assert counts[-1] == want, counts
