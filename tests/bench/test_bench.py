"""The bench harness runs end to end at a tiny size and writes the figures it promises; its
pure parts (report, BENCHMARKS.md update, configs) do what they say. No speed is asserted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench import fixtures
from bench.blackbox import blackbox_config
from bench.report import goals, markdown, table
from bench.scale import BEGIN, END, main, update_benchmarks_md
from bench.servers import nginx_conf
from bench.stats import percentile, summary
from tests.conftest import require_binary

SIDE_KEYS = {
    "probes",
    "probes_per_s",
    "configured_per_s",
    "cpu_s",
    "cpu_s_per_min",
    "cores",
    "cpu_s_per_1000_probes",
    "peak_rss_mib",
    "timing_error_ms",
    "success_ratio",
}


def test_scale_smoke_writes_results_with_expected_keys(tmp_path: Path) -> None:
    require_binary("nginx")
    require_binary("prometheus-blackbox-exporter")
    args = ["--sizes", "5", "--window", "2", "--warmup", "1", "--interval", "1"]
    args += ["--delay-targets", "2", "--delay", "0.05", "--no-transport", "--no-md"]
    # default --metrics app: the exporter's own /metrics, as shipped; both encoders are timed
    assert main([*args, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "scale.json").read_text())
    assert {"machine", "plan", "runs", "goals", "started"} <= results.keys()
    (run,) = results["runs"]
    assert run["n"] == 5
    us, bb = run["us"], run["blackbox"]
    assert us.keys() >= SIDE_KEYS
    assert SIDE_KEYS | {"driver_cpu_s", "cpu_s_per_1000_probes_with_driver"} <= bb.keys()
    render_keys = {"render_ms", "render_exposition_ms", "render_client_ms", "render_bytes"}
    assert render_keys | {"metrics_bytes", "scrape_bytes", "loop_lag_ms", "scrape_ms"} <= us.keys()
    assert us["render_ms"] == us["render_exposition_ms"]
    # both sides really probed the nginx and delay targets, and every probe passed
    assert us["probes"] > 0 and bb["probes"] > 0
    assert us["success_ratio"] == 1.0 and bb["success_ratio"] == 1.0
    assert us["configured_per_s"] == bb["configured_per_s"] == 7 * 3 / 1
    assert us["metrics_bytes"] > 0
    # scraped with Accept-Encoding: gzip, as Prometheus does; the app compresses
    assert 0 < us["scrape_bytes"] < us["metrics_bytes"]
    assert (tmp_path / "scale.png").stat().st_size > 0


def _side(cpu_per_1000: float, p99: float) -> dict[str, object]:
    return {
        "cpu_s_per_1000_probes": cpu_per_1000,
        "cpu_s_per_1000_probes_with_driver": cpu_per_1000 * 2,
        "render_ms": 10.0,
        "render_exposition_ms": 10.0,
        "render_client_ms": 40.0,
        "timing_error_ms": {"p50": 0.5, "p99": p99, "max": p99, "n": 10},
    }


def _results(ratio: float) -> dict[str, object]:
    machine = dict.fromkeys(
        ["nproc", "cpu_model", "ram_gib", "kernel", "python", "blackbox_exporter", "nginx",
         "httpx", "httpx_aiohttp", "aiohttp", "prometheus_client"], "x"
    )  # fmt: skip
    plan = {"quick": False, "delay_targets": 50, "delay": 0.1, "interval": 15.0,
            "max_concurrency": 64, "warmup": 6.0, "window": 60.0}  # fmt: skip
    runs = [
        {"n": n, "us": _side(ratio, 1.5), "blackbox": _side(1.0, 3.0)} for n in (100, 1000, 5000)
    ]
    return {"started": "now", "machine": machine, "plan": plan, "runs": runs}


def test_goals_follow_the_figures() -> None:
    met = {g["goal"]: g["met"] for g in goals(_results(0.2))}
    assert all(met.values())
    missed = [g for g in goals(_results(0.6)) if not g["met"]]
    # 0.6x blackbox misses the ratio, and 0.6 ms x 1,000 probes/s misses the quarter core
    assert len(missed) == 2
    assert "ratio 0.60" in missed[0]["measured"]


def test_table_and_markdown_show_every_size() -> None:
    results = _results(0.3)
    text = table(results)
    md = markdown(results)
    for n in ("100", "1,000", "5,000"):
        assert n in text and f"| {n} |" in md
    assert "| met |" in md


def test_benchmarks_md_update_keeps_the_prose(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# B\n\nintro\n\n{BEGIN}\nold\n{END}\n\n## Profiling\nnotes\n")
    update_benchmarks_md(path, "new table")
    text = path.read_text()
    assert "intro" in text and "notes" in text and "new table" in text and "old" not in text


def test_percentiles() -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert summary([0.001, 0.002], 1000)["max"] == 2.0


def test_blackbox_config_is_accepted_by_blackbox_exporter(tmp_path: Path) -> None:
    binary = require_binary("prometheus-blackbox-exporter")
    conf = tmp_path / "blackbox.yml"
    conf.write_text(blackbox_config())
    out = subprocess.run(
        [binary, f"--config.file={conf}", "--config.check"], capture_output=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    # the chat module POSTs exactly the body our chat probe sends
    assert json.dumps(fixtures.chat_request_body().decode()) in conf.read_text()


def test_nginx_config_is_accepted_by_nginx(tmp_path: Path) -> None:
    binary = require_binary("nginx")
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(tmp_path, [20001, 20002]))
    out = subprocess.run(
        [binary, "-t", "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr


def test_benchmarks_md_gets_a_section_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Detection\ntheirs\n")
    update_benchmarks_md(path, "table")
    text = path.read_text()
    assert text.index("## Detection") < text.index("## Scale") < text.index("table")
    assert "theirs" in text
