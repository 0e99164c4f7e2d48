"""Sharding: the hash is Prometheus's hashmod (checked against the real Prometheus), and two
replica processes split a target list so that each target is probed exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import TargetConfig
from exporter.discovery.sharding import hashmod, owns, shard_of, split
from exporter.simulate import Simulator, SimulatorConfig
from tests.conftest import free_port
from tests.waiting import wait_for

from .helpers import prometheus

REPO = Path(__file__).resolve().parents[2]
NAMES = [f"vllm-{i}" for i in range(12)] + ["qwen-a", "llama.cpp:8080", "10.0.0.7:8000", "ö-ü"]


# ---- pure ------------------------------------------------------------------------------------
@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_every_name_has_exactly_one_owner(name: str, count: int) -> None:
    owners = [i for i in range(count) if owns(name, i, count)]
    assert owners == [shard_of(name, count)]


def test_one_shard_owns_everything_and_split_partitions() -> None:
    targets = [TargetConfig(name=n.replace("ö-ü", "oe-ue"), url="http://h:1") for n in NAMES]
    assert split(targets, 0, 1) == targets
    parts = [split(targets, i, 3) for i in range(3)]
    assert sorted(t.name for p in parts for t in p) == sorted(t.name for t in targets)
    assert all(parts), "16 names over 3 shards: each shard gets some"
    with pytest.raises(ValueError):
        hashmod("x", 0)


# ---- the same numbers as Prometheus's hashmod relabelling ------------------------------------
async def test_hash_matches_prometheus_hashmod(tmp_path: Path) -> None:
    modulus = 5
    sd = tmp_path / "targets.json"
    sd.write_text(
        json.dumps([{"targets": [f"127.0.0.1:{9}"], "labels": {"target": n}} for n in NAMES])
    )
    config = {
        "global": {"scrape_interval": "1h", "scrape_timeout": "10s"},
        "scrape_configs": [
            {
                "job_name": "shards",
                "file_sd_configs": [{"files": [str(sd)]}],
                "relabel_configs": [
                    {
                        "source_labels": ["target"],
                        "action": "hashmod",
                        "modulus": modulus,
                        "target_label": "shard",
                    }
                ],
            }
        ],
    }
    with prometheus(tmp_path, config) as base:

        async def active() -> dict[str, str] | None:
            try:
                async with httpx.AsyncClient() as c:
                    r = await c.get(base + "/api/v1/targets", params={"state": "active"})
            except httpx.HTTPError:
                return None
            if r.status_code != 200:  # still starting
                return None
            got = {
                t["labels"]["target"]: t["labels"]["shard"]
                for t in r.json()["data"]["activeTargets"]
            }
            return got if len(got) == len(NAMES) else None

        seen = await wait_for(active, timeout=45, interval=0.3)
    assert {n: int(s) for n, s in seen.items()} == {n: shard_of(n, modulus) for n in NAMES}


# ---- two replica processes -------------------------------------------------------------------
@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator(SimulatorConfig(port=0))
    await s.start()
    yield s
    await s.stop()


HEALTH_ONLY = {"models": {"enabled": False}, "chat": {"enabled": False}}


async def test_two_shards_probe_every_target_exactly_once(sim: Simulator, tmp_path: Path) -> None:
    static = [f"static-{i}" for i in range(8)]
    discovered = [f"found-{i}" for i in range(8)]
    address = sim.url.removeprefix("http://")
    (tmp_path / "sd.json").write_text(
        json.dumps([{"targets": [address], "labels": {"name": n}} for n in discovered])
    )
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "default_interval": 0.5,
                "history_file": None,
                "targets": [{"name": n, "url": sim.url, "checks": HEALTH_ONLY} for n in static],
                "discovery": {
                    "file_sd": [
                        {
                            "files": ["sd.json"],
                            "watch_interval": 1,
                            "template": {"checks": HEALTH_ONLY},
                        }
                    ]
                },
            }
        )
    )
    ports = [free_port(), free_port()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_HEARTBEAT_")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter.cli",
                "run",
                "--config",
                str(config),
                "--listen",
                f"127.0.0.1:{port}",
                "--shard",
                str(i),
                "--shards",
                "2",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i, port in enumerate(ports)
    ]
    try:

        async def probed(port: int) -> dict | None:
            try:
                async with httpx.AsyncClient() as c:
                    text = (await c.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError:
                return None
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            counts = {
                s.labels["target"]: s.value
                for s in fams["llm_probe_duration_seconds"].samples
                if s.name == "llm_probe_duration_seconds_count"
            }
            known = {s.labels["target"] for s in fams["llm_target_info"].samples}
            # a target's duration histogram appears with its first probe
            if not counts or set(counts) != known or min(counts.values()) < 1:
                return None
            return {"probed": counts, "families": fams}

        results = [await wait_for(lambda p=p: probed(p), timeout=45) for p in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    everything = set(static) | set(discovered)
    owned = [set(r["probed"]) for r in results]
    assert owned[0] | owned[1] == everything
    assert not owned[0] & owned[1]
    for i, names in enumerate(owned):
        assert names == {n for n in everything if shard_of(n, 2) == i}
        fams = results[i]["families"]
        assert fams["llm_exporter_shards"].samples[0].value == 2
        assert fams["llm_exporter_shard_index"].samples[0].value == i
        assert fams["llm_exporter_known_targets"].samples[0].value == len(everything)
        assert fams["llm_exporter_targets"].samples[0].value == len(names)
        # no shard-specific label on per-target series: rules and dashboards stay unchanged
        for fam in fams.values():
            if fam.name.startswith(("llm_target", "llm_probe")):
                assert all("shard" not in s.labels for s in fam.samples)
    assert all(proc.returncode == 0 for proc in procs), [p.stderr.read() for p in procs]
    for proc in procs:
        proc.stderr.close()


@pytest.mark.parametrize(
    "args",
    [["--shard", "2", "--shards", "2"], ["--shards", "0"], ["--shard", "-1", "--shards", "3"]],
)
def test_bad_shard_flags_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    from exporter.cli import main

    config = tmp_path / "c.yml"
    config.write_text("history_file: null\n")
    assert main(["run", "--config", str(config), *args]) == 2


def test_sharding_from_config_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.config import ConfigError, load_config

    config = tmp_path / "c.yml"
    config.write_text("sharding: {index: 1, count: 3}\n")
    assert load_config(config).sharding.index == 1
    monkeypatch.setenv("LLM_HEARTBEAT_SHARDING__INDEX", "2")
    assert load_config(config).sharding.index == 2
    monkeypatch.setenv("LLM_HEARTBEAT_SHARDING__INDEX", "3")
    with pytest.raises(ConfigError, match="index 3 must be below count 3"):
        load_config(config)
