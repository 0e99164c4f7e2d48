"""Runs one side for one fleet size and returns its figures: start, warm up, mark, measure a
window (scraping like Prometheus), mark, collect, stop. Each process's CPU is its own."""

from __future__ import annotations

import contextlib
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

__all__ = ["Plan", "run_blackbox", "run_us"]

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
# what Prometheus sends on every scrape (the app gzips /metrics when asked, as for Prometheus)
SCRAPE_HEADERS = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
SCRAPE_INTERVAL = 15.0


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
    def configured_rate(self) -> float:
        return len(self.targets) * len(MODULES) / self.interval


def _http(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    # long: /-/bench/results renders 5,000 targets through prometheus_client too
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request(method, path, headers=headers or {})
        return conn.getresponse().read()
    finally:
        conn.close()


def _wait_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _rate_figures(
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


def _timing(samples: list[Any], t0: float, t1: float, delay: float) -> dict[str, Any]:
    errors = [s[2] - delay for s in between(samples, t0, t1) if s[3]]
    return summary(errors, 1000)


def run_us(plan: Plan, nginx_pids: list[int]) -> dict[str, Any]:
    """Our exporter in its own process (bench.us)."""
    spec = {
        "targets": [{"name": n, "url": u} for n, u, _ in plan.targets],
        "delay_targets": [n for n, _, d in plan.targets if d],
        "interval": plan.interval,
        "max_concurrency": plan.max_concurrency,
        "metrics": plan.metrics,
    }
    spec_file = plan.tmp / f"us-{plan.n}.json"
    spec_file.write_text(json.dumps(spec))
    ready = plan.tmp / f"us-{plan.n}.ready"
    ready.unlink(missing_ok=True)
    log = (plan.tmp / f"us-{plan.n}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.us", "--spec", str(spec_file), "--ready-file", str(ready)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_file(ready, proc)
        port = int(json.loads(ready.read_text())["port"])
        time.sleep(plan.warmup)
        nginx0 = sample(nginx_pids).cpu
        m0 = json.loads(_http(port, "GET", "/-/bench/mark"))
        c0 = cpu_seconds(proc.pid)
        scrapes: list[tuple[float, int]] = []
        end = m0["time"] + plan.window
        next_scrape = m0["time"] + SCRAPE_INTERVAL / 2
        while True:
            now = time.time()
            if next_scrape < end and now >= next_scrape:
                t = time.perf_counter()
                body = _http(port, "GET", "/metrics", SCRAPE_HEADERS)
                scrapes.append(((time.perf_counter() - t) * 1000, len(body)))
                next_scrape += SCRAPE_INTERVAL
                continue
            if now >= end:
                break
            time.sleep(max(0.0, min(next_scrape, end) - now))
        c1 = cpu_seconds(proc.pid)
        m1 = json.loads(_http(port, "GET", "/-/bench/mark"))
        wire = scrapes[-1][1] if scrapes else None
        if wire is None:  # a window shorter than the first scrape: one now, outside the CPU
            wire = len(_http(port, "GET", "/metrics", SCRAPE_HEADERS))
        nginx1 = sample(nginx_pids).cpu
        peak = peak_rss_mib(proc.pid)
        results = json.loads(_http(port, "GET", "/-/bench/results"))
        with contextlib.suppress(OSError, http.client.HTTPException):
            _http(port, "POST", "/-/bench/stop")
    finally:
        _stop(proc)
        log.close()
    span = m1["time"] - m0["time"]
    probes = m1["probes"] - m0["probes"]
    out = _rate_figures(plan, c1 - c0, probes, m1["successes"] - m0["successes"], span)
    lag = [s[1] for s in between(results["lag"], m0["time"], m1["time"])]
    out.update(
        {
            "peak_rss_mib": round(peak, 1),
            "scrape_ms": summary([s[0] for s in scrapes]),
            # the text Prometheus parses, and what went over the wire (gzip)
            "metrics_bytes": results["render_bytes"],
            "scrape_bytes": wire,
            "render_exposition_ms": round(results["render_exposition_ms"], 3),
            "render_client_ms": round(results["render_client_ms"], 3),
            "render_join_ms": round(results.get("render_join_ms", 0.0), 3),
            # what /metrics itself runs in this run
            "render_ms": round(
                results["render_client_ms" if plan.metrics == "client" else "render_exposition_ms"],
                3,
            ),
            "render_bytes": results["render_bytes"],
            "loop_lag_ms": summary(lag, 1000),
            # the collector's pauses (every generation), and the full (gen 2) ones alone
            "gc_pause_ms": summary(
                [g[2] for g in between(results.get("gc", []), m0["time"], m1["time"])], 1000
            ),
            "gc2_pause_ms": summary(
                [g[2] for g in between(results.get("gc", []), m0["time"], m1["time"]) if g[1] == 2],
                1000,
            ),
            "timing_error_ms": _timing(
                results["delay_samples"], m0["time"], m1["time"], plan.delay
            ),
            "nginx_cpu_s": round(nginx1 - nginx0, 3),
        }
    )
    return out


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
        _stop(proc)
        if proc.returncode != 0 or not out_file.exists():
            raise RuntimeError(f"bench.bbdriver failed; see {log.name}")
        driver = json.loads(out_file.read_text())
    finally:
        _stop(proc)
        log.close()
        bb.stop()
    m0, m1 = driver["marks"][0], driver["marks"][1]
    span = m1["time"] - m0["time"]
    probes = m1["probes"] - m0["probes"]
    out = _rate_figures(plan, b1 - b0, probes, m1["successes"] - m0["successes"], span)
    driver_cpu = d1 - d0
    out.update(
        {
            "driver_cpu_s": round(driver_cpu, 3),
            "cpu_s_per_1000_probes_with_driver": round((b1 - b0 + driver_cpu) / probes * 1000, 4)
            if probes
            else None,
            "peak_rss_mib": round(peak, 1),
            "driver_peak_rss_mib": round(driver_peak, 1),
            "timing_error_ms": _timing(driver["delay_samples"], m0["time"], m1["time"], plan.delay),
            "nginx_cpu_s": round(nginx1 - nginx0, 3),
        }
    )
    return out
