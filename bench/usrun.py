"""Our side for one fleet size: K `bench.us` processes (K = --shards, 1 by default), each given
every target and `sharding: {index: i, count: K}` so each probes its hash share, as replicas
do (docs/scaling.md). All are started, warmed up, marked and measured over the same window and
scraped like Prometheus scrapes K replicas; each one's CPU is read from /proc.

Figures are for the whole side, so a rate goal is honest: probes, CPU and the configured rate
summed over the processes, CPU per probe = total CPU / total probes, loop lag, GC pauses and
timing error merged over every process's samples (each taken in its own window), peak RSS per
process (the largest, and the sum), /metrics figures per process (the largest)."""

from __future__ import annotations

import contextlib
import http.client
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from bench.procstat import cpu_seconds, peak_rss_mib, sample
from bench.runner import (
    SCRAPE_HEADERS,
    Plan,
    http_request,
    rate_figures,
    stop_process,
    timing_errors,
    wait_file,
)
from bench.stats import between, summary

__all__ = ["run_us", "side_figures"]


@dataclass
class Shard:
    """One bench.us process and what the harness read from it."""

    index: int
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    port: int = 0
    m0: dict[str, Any] = field(default_factory=dict)
    m1: dict[str, Any] = field(default_factory=dict)
    cpu: float = 0.0
    scrapes: list[tuple[float, int]] = field(default_factory=list)  # (ms, bytes on the wire)
    wire: int = 0
    peak: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)


def _start(plan: Plan, index: int) -> Shard:
    spec = {
        "targets": [{"name": n, "url": u} for n, u, _ in plan.targets],
        "delay_targets": [n for n, _, d in plan.targets if d],
        "interval": plan.interval,
        "max_concurrency": plan.max_concurrency,
        "metrics": plan.metrics,
        "sharding": {"index": index, "count": plan.shards},
        "profile": plan.profile,
    }
    stem = plan.tmp / f"us-{plan.n}-{index}"
    spec_file = stem.with_suffix(".json")
    spec_file.write_text(json.dumps(spec))
    ready = stem.with_suffix(".ready")
    ready.unlink(missing_ok=True)
    log = stem.with_suffix(".log").open("wb")
    cmd = [sys.executable, "-m", "bench.us", "--spec", str(spec_file), "--ready-file", str(ready)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return Shard(index, proc, log)  # its port: from the ready file (_ready)


def _ready(plan: Plan, shard: Shard) -> None:
    ready = plan.tmp / f"us-{plan.n}-{shard.index}.ready"
    wait_file(ready, shard.proc)
    shard.port = int(json.loads(ready.read_text())["port"])


def _mark(shard: Shard) -> dict[str, Any]:
    return dict(json.loads(http_request(shard.port, "GET", "/-/bench/mark")))


def _scrape(shard: Shard) -> None:
    t = time.perf_counter()
    body = http_request(shard.port, "GET", "/metrics", SCRAPE_HEADERS)
    shard.scrapes.append(((time.perf_counter() - t) * 1000, len(body)))


def _window(
    shards: list[Shard], start: float, window: float, every: float, views: bool = False
) -> None:
    """Scrape every process `every` seconds (the first at half of it) until the end; with
    `views`, also read /api/v1/targets each time (a dashboard polling the status API)."""
    end = start + window
    next_scrape = start + every / 2
    while True:
        now = time.time()
        if next_scrape < end and now >= next_scrape:
            for shard in shards:
                _scrape(shard)
                if views:
                    http_request(shard.port, "GET", "/api/v1/targets", SCRAPE_HEADERS)
            next_scrape += every
            continue
        if now >= end:
            return
        time.sleep(max(0.0, min(next_scrape, end) - now))


def run_us(plan: Plan, nginx_pids: list[int]) -> dict[str, Any]:
    """Our exporter as plan.shards processes (bench.us), measured over one window."""
    shards: list[Shard] = []
    try:
        shards = [_start(plan, i) for i in range(plan.shards)]
        for shard in shards:
            _ready(plan, shard)
        time.sleep(plan.warmup)
        nginx0 = sample(nginx_pids).cpu
        for shard in shards:
            shard.m0 = _mark(shard)
        cpu0 = [cpu_seconds(s.proc.pid) for s in shards]
        _window(
            shards,
            min(s.m0["time"] for s in shards),
            plan.window,
            plan.scrape_interval,
            plan.poll_views,
        )
        cpu1 = [cpu_seconds(s.proc.pid) for s in shards]
        for shard in shards:
            shard.m1 = _mark(shard)
        for shard, c0, c1 in zip(shards, cpu0, cpu1, strict=True):
            shard.cpu = c1 - c0
        nginx1 = sample(nginx_pids).cpu
        for shard in shards:
            # a window shorter than the first scrape: one now, outside the CPU
            shard.wire = (
                shard.scrapes[-1][1]
                if shard.scrapes
                else len(http_request(shard.port, "GET", "/metrics", SCRAPE_HEADERS))
            )
            shard.peak = peak_rss_mib(shard.proc.pid)
        for shard in shards:  # renders every target twice: after the window, off the CPU
            shard.results = json.loads(http_request(shard.port, "GET", "/-/bench/results"))
            with contextlib.suppress(OSError, http.client.HTTPException):
                http_request(shard.port, "POST", "/-/bench/stop")
    finally:
        for shard in shards:
            stop_process(shard.proc)
            shard.log.close()
    out = side_figures(plan, shards)
    out["nginx_cpu_s"] = round(nginx1 - nginx0, 3)
    return out


def _in_window(shards: list[Shard], key: str) -> list[tuple[Shard, list[Any]]]:
    """Each process's samples of one kind, in that process's own window."""
    return [(s, between(s.results.get(key, []), s.m0["time"], s.m1["time"])) for s in shards]


def _largest(shards: list[Shard], key: str) -> float:
    return max(float(s.results.get(key, 0.0)) for s in shards)


def side_figures(plan: Plan, shards: list[Shard]) -> dict[str, Any]:
    """The side's figures from its processes' marks, CPU, scrapes and results."""
    span = statistics.fmean(s.m1["time"] - s.m0["time"] for s in shards)
    probes = sum(s.m1["probes"] - s.m0["probes"] for s in shards)
    successes = sum(s.m1["successes"] - s.m0["successes"] for s in shards)
    out = rate_figures(plan, sum(s.cpu for s in shards), probes, successes, span)
    lag = [x[1] for _, samples in _in_window(shards, "lag") for x in samples]
    gcs = [g for _, samples in _in_window(shards, "gc") for g in samples]
    errors = [
        e
        for s in shards
        for e in timing_errors(
            s.results.get("delay_samples", []), s.m0["time"], s.m1["time"], plan.delay
        )
    ]
    render = "render_client_ms" if plan.metrics == "client" else "render_exposition_ms"
    out.update(
        {
            "shards": plan.shards,
            "peak_rss_mib": round(max(s.peak for s in shards), 1),  # per process, the largest
            "peak_rss_mib_sum": round(sum(s.peak for s in shards), 1),
            "scrape_ms": summary([ms for s in shards for ms, _ in s.scrapes]),
            # per process, the largest: the text Prometheus parses, and the wire (gzip)
            "metrics_bytes": int(_largest(shards, "render_bytes")),
            "scrape_bytes": max(s.wire for s in shards),
            "render_exposition_ms": round(_largest(shards, "render_exposition_ms"), 3),
            "render_client_ms": round(_largest(shards, "render_client_ms"), 3),
            "render_join_ms": round(_largest(shards, "render_join_ms"), 3),
            "render_ms": round(_largest(shards, render), 3),  # what /metrics runs in this run
            "render_bytes": int(_largest(shards, "render_bytes")),
            "loop_lag_ms": summary(lag, 1000),
            # the collectors' pauses (every generation), and the full (gen 2) ones alone
            "gc_pause_ms": summary([g[2] for g in gcs], 1000),
            "gc0_pause_ms": summary([g[2] for g in gcs if g[1] == 0], 1000),
            "gc1_pause_ms": summary([g[2] for g in gcs if g[1] == 1], 1000),
            "gc2_pause_ms": summary([g[2] for g in gcs if g[1] == 2], 1000),
            "timing_error_ms": summary(errors, 1000),
            "per_process": [_process(plan, s) for s in shards],
        }
    )
    return out


def _process(plan: Plan, s: Shard) -> dict[str, Any]:
    """One process's share: its targets, probes and CPU (the sum of these is the side's)."""
    span = s.m1["time"] - s.m0["time"]
    probes = s.m1["probes"] - s.m0["probes"]
    targets = s.m1.get("targets")
    return {
        "index": s.index,
        "targets": targets,
        "probes": probes,
        "probes_per_s": round(probes / span, 2),
        "configured_per_s": None if targets is None else round(targets * plan.per_target_rate, 2),
        "cpu_s": round(s.cpu, 3),
        "cpu_s_per_1000_probes": round(s.cpu / probes * 1000, 4) if probes else None,
        "peak_rss_mib": round(s.peak, 1),
    }
