"""Memory and collector cost of the runtime store at scale (issue 16), in process, no network.

Builds a Monitor with N targets the way the scale bench does (bench/us.py's build_settings:
health, models, chat; engine check off), feeds it the results the bench servers give for
every check for `--rounds` rounds of 15 s (a simulated clock: no waiting), renders /metrics,
renders it again after one more round (templates kept, every target changed), takes the read
endpoints' snapshot (the API's JSON and the status page), and prints after each stage: RSS
(and the peak so far, VmHWM), the objects the cyclic GC tracks, and the time of a full (gen2)
collection.
`--tracemalloc` adds the top allocation sites (slower, and it costs memory of its own).

Run: python -m bench.memory [--targets 5000] [--rounds 25] [--tracemalloc]
No assertions: figures to compare before and after a change (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from bench import fixtures
from bench.runner import PROMETHEUS_ACCEPT
from bench.us import build_settings
from exporter.engine.monitor import Monitor
from exporter.metrics.collector import MonitorCollector
from exporter.metrics.exposition import render
from exporter.probes.results import Check, ProbeResult
from exporter.server.snapshot import ViewCache
from exporter.server.web.assets import load_assets
from exporter.server.web.page import render_page

__all__ = ["main"]

INTERVAL = 15.0


class Clock:
    """The monitor's clock, moved by hand: rounds take no real time."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def rss_mib(field: str = "VmRSS") -> float:
    """Resident set size (VmRSS) or its peak (VmHWM) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gen2_ms(repeat: int = 3) -> float:
    """Median time of a full collection, as one held the event loop."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def result(check: Check, now: float, i: int) -> ProbeResult:
    """What a bench server's answer becomes in our probe (bench/fixtures.py's bodies)."""
    d = 0.002 + (i % 97) * 1e-5
    phases = {"response_headers": d * 0.8}
    if check is Check.MODELS:
        return ProbeResult(check, True, d, now - d, 200, phases=phases, models=(fixtures.MODEL,))
    if check is Check.CHAT:
        return ProbeResult(
            check,
            True,
            d * 2,
            now - 2 * d,
            200,
            phases={**phases, "ttft": d * 1.5},
            ttft=d * 1.5,
            max_stall=d * 0.3,
            prompt_tokens=17,
            completion_tokens=2,
            tokens_per_second=None,
            content=fixtures.EXPECT_CHAT,
            finish_reason="stop",
        )
    return ProbeResult(check, True, d, now - d, 200, phases=phases)


def feed(monitor: Monitor, clock: Clock, rounds: int) -> float:
    """`rounds` rounds of every check of every target; returns seconds per record."""
    names = list(monitor.targets)
    checks = (Check.HEALTH, Check.MODELS, Check.CHAT)
    t0 = time.perf_counter()
    n = 0
    for _ in range(rounds):
        step = INTERVAL / (len(names) * len(checks))
        for i, name in enumerate(names):
            for check in checks:
                clock.now += step
                monitor.record(name, result(check, clock.now, i))
                n += 1
    return (time.perf_counter() - t0) / max(n, 1)


def stage(label: str, base: float, targets: int, rows: list[dict[str, float | str]]) -> None:
    gc.collect()
    rss = rss_mib()
    row: dict[str, float | str] = {
        "stage": label,
        "rss_mib": round(rss, 1),
        "peak_mib": round(rss_mib("VmHWM"), 1),  # so far: a stage's transient shows here
        "per_target_kib": round((rss - base) * 1024 / targets, 1),
        "tracked": len(gc.get_objects()),  # the frozen ones are not walked, not counted
        "frozen": gc.get_freeze_count(),
        "gen2_ms": round(gen2_ms(), 1),
    }
    rows.append(row)
    print(
        f"{label:<28} rss {row['rss_mib']:>7} MiB (peak {row['peak_mib']:>7})  per target {row['per_target_kib']:>6} KiB  "
        f"gc-tracked {row['tracked']:>9,} (+{row['frozen']:,} frozen)  gen2 collect {row['gen2_ms']:>6} ms",
        flush=True,
    )


def top_allocations(snapshot: tracemalloc.Snapshot, limit: int = 15) -> None:
    print(f"\ntop {limit} allocation sites (tracemalloc, by size):")
    for stat in snapshot.statistics("lineno")[:limit]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size / 2**20:7.1f} MiB {stat.count:>9,} blocks  {frame.filename}:{frame.lineno}"
        )


def run(targets: int, rounds: int, trace: bool, freeze: bool) -> list[dict[str, float | str]]:
    if trace:
        tracemalloc.start()
    rows: list[dict[str, float | str]] = []
    spec = {
        "targets": [
            {"name": f"t{i:05d}", "url": f"http://127.0.0.{1 + i // 250}:{8000 + i % 250}"}
            for i in range(targets)
        ],
        "interval": INTERVAL,
        "max_concurrency": 512,
    }
    gc.collect()
    base = rss_mib()
    stage("imports", base, targets, rows)
    clock = Clock()
    monitor = Monitor(build_settings(spec), clock=clock, sinks=[])
    stage("monitor built", base, targets, rows)
    if freeze:
        gc.freeze()  # as Exporter.start() does
    per_record = feed(monitor, clock, rounds)
    stage(f"{rounds} rounds fed", base, targets, rows)
    collector = MonitorCollector(monitor)

    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(collector)
    t0 = time.perf_counter()
    asyncio.run(collector.refresh(slice_seconds=float("inf")))
    body = render(registry, PROMETHEUS_ACCEPT)[0]
    render_ms = (time.perf_counter() - t0) * 1000
    stage("/metrics rendered", base, targets, rows)
    feed(monitor, clock, 1)  # the next scrape: every target changed, templates kept
    del body
    t0 = time.perf_counter()
    asyncio.run(collector.refresh(slice_seconds=float("inf")))
    body = render(registry, PROMETHEUS_ACCEPT)[0]
    again_ms = (time.perf_counter() - t0) * 1000
    stage("/metrics again, all changed", base, targets, rows)
    age = [0.0]
    views = ViewCache(monitor, clock=lambda: age[0], wall=clock)
    t0 = time.perf_counter()
    view = views.view()
    api = json.dumps(view).encode()
    urls = {name: asset.url for name, asset in load_assets().items()}
    page = render_page(view, refresh=5.0, query="", assets=urls)
    view_ms = (time.perf_counter() - t0) * 1000
    stage("snapshot + API + page", base, targets, rows)
    api_bytes, page_chars = len(api), len(page)
    del view, api, page
    age[0] += views.max_age
    views._expire()  # what the running app's timer does once the snapshot is stale
    stage("snapshot let go", base, targets, rows)
    print(
        f"\nrecord {per_record * 1e6:.1f} us; /metrics {render_ms:.0f} ms, {len(body):,} bytes, "
        f"again {again_ms:.0f} ms; "
        f"snapshot+API+page {view_ms:.0f} ms, API {api_bytes:,} bytes, page {page_chars:,} chars; "
        f"peak RSS {rss_mib('VmHWM'):.1f} MiB"
    )
    if trace:
        top_allocations(tracemalloc.take_snapshot())
    return rows


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=25, help="15 s rounds (60 results = 20)")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--no-freeze", action="store_true", help="skip gc.freeze() after start")
    args = parser.parse_args(argv)
    run(args.targets, args.rounds, args.tracemalloc, not args.no_freeze)


if __name__ == "__main__":
    main()
