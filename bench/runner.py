"""Runs one side for one fleet size and returns its figures: start, warm up, mark, measure a
window (scraping like Prometheus), mark, collect, stop. Each process's CPU is its own.
This module: the plan, the helpers both sides share and blackbox_exporter's side; ours
(one process per shard) is bench.usrun."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.blackbox import MODULES, PATHS, Blackbox
from bench.procstat import cpu_seconds, peak_rss_mib, sample
from bench.stats import between, summary

__all__ = [
    "PROMETHEUS_ACCEPT",
    "SCRAPE_HEADERS",
    "SCRAPE_INTERVAL",
    "Plan",
    "http_request",
    "rate_figures",
    "run_blackbox",
    "stop_process",
    "timing_errors",
    "wait_file",
]

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
# what Prometheus sends on every scrape (the app gzips /metrics when asked, as for Prometheus)
SCRAPE_HEADERS = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
SCRAPE_INTERVAL = 15.0
# examples/fast-detection.yml with prometheus/prometheus-fast.yml's 1 s scrapes: per check, the
# interval (models has none of its own: default_interval 5 s); the engine check stays off
FAST_INTERVALS = {"health": 1.0, "models": 5.0, "chat": 3.0}
FAST_SCRAPE_INTERVAL = 1.0


@dataclass(frozen=True)
class Plan:
    """One fleet: which targets, at what rate, for how long."""

    n: int
    nginx_ports: list[int]
    delay_ports: list[int]
    delay: float
    interval: float
    warmup: float
    window: float
    max_concurrency: int
    tmp: Path
    metrics: str = "app"  # "client": /metrics through prometheus_client's encoder (the old way)
    shards: int = 1  # our side: this many bench.us processes, replica i of K each
    profile: str = "default"  # "fast": examples/fast-detection.yml's cadence, 1 s scrapes
    poll_views: bool = False  # with each scrape also GET /api/v1/targets (peak RSS with views)

    @property
    def targets(self) -> list[tuple[str, str, bool]]:
        """(name, base URL, is a delay target)."""
        out = [
            (f"t{i:05d}", f"http://127.0.0.1:{p}", False) for i, p in enumerate(self.nginx_ports)
        ]
        out += [
            (f"d{i:03d}", f"http://127.0.0.1:{p}", True) for i, p in enumerate(self.delay_ports)
        ]
        return out

    @property
    def per_target_rate(self) -> float:
        """Probes per second one target gets."""
        if self.profile == "fast":
            return sum(1 / i for i in FAST_INTERVALS.values())
        return len(MODULES) / self.interval

    @property
    def scrape_interval(self) -> float:
        return FAST_SCRAPE_INTERVAL if self.profile == "fast" else SCRAPE_INTERVAL

    @property
    def configured_rate(self) -> float:
        return len(self.targets) * self.per_target_rate


def http_request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    # long: /-/bench/results renders 5,000 targets through prometheus_client too
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request(method, path, headers=headers or {})
        return conn.getresponse().read()
    finally:
        conn.close()


def wait_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    """Until a process writes its ready file (startup parses every target: minutes at 10,000
    when K processes start at once on 2 cores)."""
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rate_figures(
    plan: Plan, cpu: float, probes: int, successes: int, span: float
) -> dict[str, Any]:
    per_probe = cpu / probes if probes else None
    return {
        "window_s": round(span, 3),
        "probes": probes,
        "success_ratio": round(successes / probes, 4) if probes else None,
        "probes_per_s": round(probes / span, 2),
        "configured_per_s": round(plan.configured_rate, 2),
        "cpu_s": round(cpu, 3),
        "cpu_s_per_min": round(cpu / span * 60, 3),
        "cores": round(cpu / span, 4),
        "cpu_s_per_1000_probes": None if per_probe is None else round(per_probe * 1000, 4),
    }


def timing_errors(samples: list[Any], t0: float, t1: float, delay: float) -> list[float]:
    """Measured minus injected delay (seconds) of the passing delay-target probes in [t0, t1)."""
    return [s[2] - delay for s in between(samples, t0, t1) if s[3]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_blackbox(plan: Plan, nginx_pids: list[int]) -> dict[str, Any]:
    """blackbox_exporter driven through /probe by bench.bbdriver, same targets and rate."""
    bb = Blackbox(plan.tmp, _free_port())
    bb.start()
    spec = {
        "targets": [(u, d) for _, u, d in plan.targets],
        "modules": MODULES,
        "paths": PATHS,
        "interval": plan.interval,
        "max_concurrency": plan.max_concurrency,
        "blackbox_port": bb.port,
    }
    spec_file = plan.tmp / f"bb-{plan.n}.json"
    spec_file.write_text(json.dumps(spec))
    out_file = plan.tmp / f"bb-{plan.n}.out"
    out_file.unlink(missing_ok=True)
    log = (plan.tmp / f"bbdriver-{plan.n}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bbdriver", "--spec", str(spec_file), "--out", str(out_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(plan.warmup)
        nginx0 = sample(nginx_pids).cpu
        b0, d0 = cpu_seconds(bb.pid), cpu_seconds(proc.pid)
        proc.send_signal(signal.SIGUSR1)
        time.sleep(plan.window)
        b1, d1 = cpu_seconds(bb.pid), cpu_seconds(proc.pid)
        proc.send_signal(signal.SIGUSR1)
        nginx1 = sample(nginx_pids).cpu
        peak = peak_rss_mib(bb.pid)
        driver_peak = peak_rss_mib(proc.pid)
        time.sleep(0.2)
        stop_process(proc)
        if proc.returncode != 0 or not out_file.exists():
            raise RuntimeError(f"bench.bbdriver failed; see {log.name}")
        driver = json.loads(out_file.read_text())
    finally:
        stop_process(proc)
        log.close()
        bb.stop()
    m0, m1 = driver["marks"][0], driver["marks"][1]
    span = m1["time"] - m0["time"]
    probes = m1["probes"] - m0["probes"]
    out = rate_figures(plan, b1 - b0, probes, m1["successes"] - m0["successes"], span)
    driver_cpu = d1 - d0
    out.update(
        {
            "driver_cpu_s": round(driver_cpu, 3),
            "cpu_s_per_1000_probes_with_driver": round((b1 - b0 + driver_cpu) / probes * 1000, 4)
            if probes
            else None,
            "peak_rss_mib": round(peak, 1),
            "driver_peak_rss_mib": round(driver_peak, 1),
            "timing_error_ms": summary(
                timing_errors(driver["delay_samples"], m0["time"], m1["time"], plan.delay), 1000
            ),
            "nginx_cpu_s": round(nginx1 - nginx0, 3),
        }
    )
    return out
