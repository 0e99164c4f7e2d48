"""/metrics render micro-benchmark: N targets with every check recorded a few times, rendered
by prometheus_client's encoder (what `/metrics` does through `choose_encoder`) and by
`exporter.metrics.exposition.render`, from cached text and, as at a real scrape (each target
probed several times per scrape interval), with every target changed: the collector's refresh
in one go plus the render, the loop time one scrape costs however it is sliced (as bench/us.py's
`_render_ms`). Run: python -m bench.render [--targets 1000]."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from bench import fixtures
from bench.runner import PROMETHEUS_ACCEPT
from exporter.config import Settings, TargetConfig
from exporter.engine.monitor import Monitor
from exporter.metrics.collector import ExporterCollector, MonitorCollector
from exporter.metrics.exposition import render
from exporter.probes.results import Check, ProbeResult

__all__ = ["run_render"]


def _registry(n: int) -> tuple[CollectorRegistry, Monitor, MonitorCollector]:
    """A registry like the exporter's (runtime.py), with every target probed three times."""
    targets = [
        TargetConfig(name=f"t{i:05d}", url=f"http://127.0.0.1:{20000 + i}", model=fixtures.MODEL)
        for i in range(n)
    ]
    monitor = Monitor(Settings(targets=targets, history_file=None))
    now = time.time()
    for name in monitor.targets:
        for k in range(3):
            for check in Check:
                chat = check is Check.CHAT
                monitor.record(
                    name,
                    ProbeResult(
                        check, True, 0.001 * (k + 1) + hash(name) % 97 / 1e4, now, 200,
                        ttft=0.004 if chat else None, max_stall=0.0002 if chat else None,
                        tokens_per_second=812.5 if chat else None,
                        prompt_tokens=17 if chat else None, completion_tokens=2 if chat else None,
                        models=(fixtures.MODEL,) if check is Check.MODELS else (),
                    ),
                )  # fmt: skip
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    collector = MonitorCollector(monitor)
    registry.register(collector)
    registry.register(ExporterCollector(monitor))
    return registry, monitor, collector


def _time(fn: Any, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        size = len(fn())
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), size


def _changed_ms(
    registry: CollectorRegistry, monitor: Monitor, collector: MonitorCollector, repeat: int
) -> tuple[float, float]:
    """(refresh, refresh + render) in ms, medians, with every target changed before each run."""
    refresh, total = [], []
    for _ in range(repeat):
        for rt in monitor.targets.values():
            rt.version += 1  # stale blocks: the normal case at a 15 s scrape
        t0 = time.perf_counter()
        asyncio.run(collector.refresh(slice_seconds=float("inf")))
        t1 = time.perf_counter()
        render(registry, PROMETHEUS_ACCEPT)
        t2 = time.perf_counter()
        refresh.append((t1 - t0) * 1000)
        total.append((t2 - t0) * 1000)
    return statistics.median(refresh), statistics.median(total)


def run_render(n: int = 1000, repeat: int = 5, client: bool = True) -> dict[str, Any]:
    registry, monitor, collector = _registry(n)
    encoder, _ = choose_encoder(PROMETHEUS_ACCEPT)
    slow_ms, size = _time(lambda: encoder(registry), repeat) if client else (0.0, 0)
    fast_ms, fast_size = _time(lambda: render(registry, PROMETHEUS_ACCEPT)[0], repeat)
    refresh_ms, changed_ms = _changed_ms(registry, monitor, collector, repeat)
    return {
        "targets": n,
        "bytes": size or fast_size,
        "prometheus_client_ms": round(slow_ms, 2),
        "fast_ms": round(fast_ms, 2),
        "fast_bytes": fast_size,
        "changed_refresh_ms": round(refresh_ms, 2),
        "changed_ms": round(changed_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, nargs="*", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--no-client", action="store_true", help="skip prometheus_client's encoder (seconds)"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # a thousand targets' "no engine view" lines
    out = [run_render(n, args.repeat, not args.no_client) for n in args.targets]
    for r in out:
        print(
            f"{r['targets']:>6} targets  {r['bytes'] / 1024:8.0f} KiB  prometheus_client "
            f"{r['prometheus_client_ms']:8.1f} ms  exposition.render {r['fast_ms']:7.1f} ms  "
            f"all changed: refresh {r['changed_refresh_ms']:7.1f} ms, "
            f"+ render {r['changed_ms']:7.1f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
