"""The harness itself, without Prometheus or Alertmanager: the config rewrites (run on the
shipped files), the mail reader, the supervisor's restart-on-request mode, and the premise of
the noise scenario."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.configs import (
    REPO,
    AlertmanagerAddresses,
    alertmanager_config,
    fmt_seconds,
    load_yaml,
    parse_seconds,
    prometheus_config,
    short_timings,
)
from tests.e2e.procs import ProcessGroup, wait_until
from tests.e2e.sinks import alert_sections
from tests.e2e.stack import SimHandle, TargetSpec
from tests.e2e.test_loop import NOISE_SEED, TARGETS

ADDR = AlertmanagerAddresses(
    recovery_base="http://127.0.0.1:1111",
    humans_webhook="http://127.0.0.1:2222/chat",
    smarthost="127.0.0.1:2525",
    token_file=Path("/tmp/t/token"),
    chat_url_file=Path("/tmp/t/chat_url"),
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0.0), ("500ms", 0.5), ("1m30s", 90.0), ("4h", 14400.0), ("2", None)],
)
def test_parse_seconds(text: str, seconds: float | None) -> None:
    if seconds is None:
        with pytest.raises(ValueError):
            parse_seconds(text)
    else:
        assert parse_seconds(text) == seconds


def test_fmt_seconds_round_trips() -> None:
    for value in (0.0, 0.3, 1.0, 90.0):
        assert parse_seconds(fmt_seconds(value)) == value


@pytest.mark.parametrize("profile", ["prometheus.yml", "prometheus-fast.yml"])
def test_prometheus_config_keeps_shipped_rules(profile: str) -> None:
    shipped = load_yaml(REPO / "prometheus" / profile)
    cfg = prometheus_config(
        shipped, shipped_dir=REPO / "prometheus", exporter="127.0.0.1:1", alertmanager="127.0.0.1:2"
    )
    assert cfg["rule_files"] == [str(REPO / "prometheus" / p) for p in shipped["rule_files"]]
    assert any(Path(p).parent.name in ("default", "fast") for p in cfg["rule_files"])
    assert [j["job_name"] for j in cfg["scrape_configs"]] == ["llm-heartbeat"]
    assert cfg["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:1"]}]
    targets = cfg["alerting"]["alertmanagers"][0]["static_configs"]
    assert targets == [{"targets": ["127.0.0.1:2"]}]
    assert cfg["global"] == shipped["global"]  # benchmarks measure the shipped intervals

    fast = prometheus_config(
        shipped,
        shipped_dir=REPO / "prometheus",
        exporter="127.0.0.1:1",
        alertmanager="127.0.0.1:2",
        interval=1.0,
    )
    assert fast["global"]["evaluation_interval"] == "1s"
    assert fast["scrape_configs"][0]["scrape_interval"] == "1s"


def test_alertmanager_config_rewrites_only_addresses_and_timings() -> None:
    shipped = load_yaml(REPO / "alertmanager" / "alertmanager.yml")
    cfg = alertmanager_config(shipped, ADDR, short_timings)
    assert cfg["global"]["smtp_smarthost"] == "127.0.0.1:2525"
    assert cfg["global"]["smtp_require_tls"] is False
    assert cfg["inhibit_rules"] == shipped["inhibit_rules"]
    assert [r["name"] for r in cfg["receivers"]] == [r["name"] for r in shipped["receivers"]]
    hooks = [h for r in cfg["receivers"] for h in r.get("webhook_configs", [])]
    assert hooks, "the shipped config has a recovery webhook"
    assert all(h["url"] == "http://127.0.0.1:1111/hooks/alertmanager" for h in hooks)
    assert all(
        h["http_config"]["authorization"]["credentials_file"] == "/tmp/t/token" for h in hooks
    )
    chats = [c for r in cfg["receivers"] for c in r.get("slack_configs", [])]
    assert all(c.get("api_url_file") == "/tmp/t/chat_url" for c in chats)

    def walk(route: dict[str, object]) -> list[dict[str, object]]:
        out = [route]
        for child in route.get("routes", []) or []:  # type: ignore[attr-defined]
            out += walk(child)
        return out

    old, new = walk(shipped["route"]), walk(cfg["route"])
    assert [r.get("matchers") for r in old] == [r.get("matchers") for r in new]
    assert [r.get("receiver") for r in old] == [r.get("receiver") for r in new]
    for before, after in zip(old, new, strict=True):
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in before:
                assert parse_seconds(after[key]) <= min(parse_seconds(before[key]), 2.0)  # type: ignore[arg-type]
        if before.get("group_wait") == "0s":
            assert after["group_wait"] == "0s"

    unchanged = alertmanager_config(shipped, ADDR, None)
    assert unchanged["route"] == shipped["route"]


def test_alert_sections_reads_firing_and_resolved() -> None:
    html = (
        "<style>x</style><strong>[1] Firing</strong><p>Labels<br/>alertname = LLMTargetDown"
        "<br/>target = a</p><strong>[2] Resolved</strong>alertname = LLMInferenceDegraded"
        "<br/>alertname&#61;LLMLatencyHigh"
    )
    assert alert_sections(html) == {
        "firing": {"LLMTargetDown"},
        "resolved": {"LLMInferenceDegraded", "LLMLatencyHigh"},
    }


def test_noise_seed_premise() -> None:
    """The simulator draws `Random(seed).random() < rate` per completion: with this seed the
    noise has single and double failures early, and never three in a row (which would be a
    real outage for failures_to_down: 3)."""
    assert "--seed" in next(t for t in TARGETS if t.name == "noise").sim_args
    draws = random.Random(NOISE_SEED)
    hits = [draws.random() < 0.05 for _ in range(3000)]
    assert sum(hits[:60]) >= 3
    assert any(a and b for a, b in itertools.pairwise(hits[:61]))
    assert not any(hits[i] and hits[i + 1] and hits[i + 2] for i in range(len(hits) - 2))


def test_supervisor_restarts_only_on_request(tmp_path: Path) -> None:
    """--no-auto-restart: a crash stays down until SIGHUP; --child-args-file is read anew at
    every start (here: the next start crashes on its own after 0.5 s)."""
    group = ProcessGroup(tmp_path / "logs")
    sim = SimHandle(TargetSpec("s", sim_args=("--fast",)), tmp_path, free_port())
    try:
        proc = sim.proc = group.start("sim", sim.argv(restart_delay=0.1))
        wait_until(sim.healthy, 30, "simulator up")
        sim.crash()
        wait_until(lambda: not sim.healthy(), 10, "simulator down")
        assert proc.alive()
        time.sleep(1.0)  # give an auto-restart the chance it must not take
        assert not sim.healthy()
        assert sim.restarts() == 0

        sim.next_start("--exit-after", "0.5")
        hup = sim.restart_argv()
        assert hup[0] == "/bin/sh"
        subprocess.run(hup, check=True, timeout=10)
        wait_until(lambda: sim.restarts() == 1, 10, "one restart")
        wait_until(sim.healthy, 10, "up again after SIGHUP")
        wait_until(lambda: not sim.healthy(), 10, "the next start crashes by itself")
        time.sleep(1.0)
        assert sim.restarts() == 1  # nobody asked: it stays down

        sim.next_start()
        supervisor = int(sim.supervisor_pidfile.read_text())
        os.kill(supervisor, signal.SIGHUP)
        wait_until(sim.healthy, 10, "up after the second SIGHUP")
        assert sim.restarts() == 2
        assert httpx.get(f"{sim.url}/v1/models", timeout=5).status_code == 200
    finally:
        group.stop_all()
    assert not proc.alive()


def test_simulator_rejects_negative_exit_after() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "exporter.simulate", "--exit-after", "-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "--exit-after" in out.stderr


def test_benchmark_section_merges_without_touching_other_sections() -> None:
    from bench.detection import NoiseResult, RunResult, merge_section, render_section

    runs = [RunResult("fast", 1.0, 6.0, 7.0, 1.2), RunResult("fast", 2.0, 8.0, 9.0, 1.0)]
    noise = [NoiseResult("fast", targets=2, seconds=120, failed_probes=9)]
    section = render_section(runs, noise, "a machine", "2026-01-01", "python -m bench.detection")
    assert section.startswith("## Detection and recovery\n")
    assert "| fault → webhook received | 8.0 s / 9.0 s |" in section
    assert "0 alerts, 0 restarts (2 targets x 2 min, 9 failed probes)" in section

    assert merge_section(None, section) == "# Benchmarks\n\n" + section
    other = "# Benchmarks\n\n## Scale\n\nfigures\n"
    merged = merge_section(other, section)
    assert merged.startswith(other) and merged.endswith(section)
    again = merge_section(merged + "\n## Later\n\nmore\n", section.replace("8.0 s", "5.0 s"))
    assert "## Scale\n\nfigures" in again and "## Later\n\nmore" in again
    assert again.count("## Detection and recovery") == 1 and "5.0 s" in again
