"""What a running exporter keeps per target for the cyclic GC to walk, against real servers.

bench/memory.py measures the runtime store alone; this runs the real `Exporter` (scheduler,
aiohttp transport, keep-alive connections) against nginx on N loopback ports, as the scale
bench does but small (default 500 targets, three checks every 15 s), and prints after
`--seconds`: RSS, the gc-tracked objects a full collection walks (the frozen ones apart), the
time of a gen2 collection, and the types that hold the most tracked objects, per target,
so the figures at 5,000 targets can be estimated without running the scale bench.

Run: python -m bench.memlive [--targets 500] [--seconds 45] [--tracemalloc]. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from bench.memory import gen2_ms, rss_mib, top_allocations
from bench.servers import Nginx, free_port_block
from bench.us import build_settings
from exporter.runtime import Exporter

__all__ = ["GcPauses", "main"]


class GcPauses:
    """Every collection's pause, by generation (gc.callbacks), while installed."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._t0)

    def summary(self) -> str:
        parts = []
        for gen, p in self.pauses.items():
            if p:
                parts.append(
                    f"gen{gen}: {len(p)} x, max {max(p) * 1000:.1f} ms, total {sum(p) * 1000:.0f} ms"
                )
        return "; ".join(parts) or "none"


async def measure(
    ports: list[int], seconds: float, trace: bool, threshold: tuple[int, ...] | None
) -> None:
    spec = {
        "targets": [{"name": f"t{p}", "url": f"http://127.0.0.1:{p}"} for p in ports],
        "interval": 15.0,
        "max_concurrency": 256,
    }
    gc.collect()
    base = rss_mib()
    if trace:
        tracemalloc.start()
    exporter = Exporter(build_settings(spec))
    await exporter.start()
    if threshold:
        gc.set_threshold(*threshold)
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    lags: list[float] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        t = loop.time()
        await asyncio.sleep(0.05)
        lags.append(loop.time() - t - 0.05)
    n = len(ports)
    probes = sum(sum(rt.probes.values()) for rt in exporter.monitor.targets.values())
    gc.callbacks.remove(pauses)
    print(f"automatic collections while probing: {pauses.summary()}")
    gc.collect()
    objects = gc.get_objects()
    by_type = Counter(type(o).__qualname__ for o in objects)
    tracked = len(objects)
    del objects
    rss = rss_mib()
    print(
        f"{n} targets, {seconds:g} s, {probes} probes: rss {rss:.1f} MiB "
        f"({(rss - base) * 1024 / n:.1f} KiB per target), gc-tracked {tracked:,} "
        f"({tracked / n:.1f} per target; +{gc.get_freeze_count():,} frozen), "
        f"gen2 collect {gen2_ms():.1f} ms, loop lag max {max(lags) * 1000:.0f} ms"
    )
    print("tracked objects by type, per target:")
    for name, count in by_type.most_common(40):
        print(f"  {count / n:7.2f}  {name}")
    if trace:
        top_allocations(tracemalloc.take_snapshot(), 25)
    await exporter.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--threshold", help="gc.set_threshold after start, e.g. 10000,10,10")
    args = parser.parse_args(argv)
    first = free_port_block(args.targets)
    ports = list(range(first, first + args.targets))
    with tempfile.TemporaryDirectory() as tmp:
        nginx = Nginx(Path(tmp), ports)
        nginx.start()
        try:
            t0 = time.perf_counter()
            threshold = tuple(int(x) for x in args.threshold.split(",")) if args.threshold else None
            asyncio.run(measure(ports, args.seconds, args.tracemalloc, threshold))
            print(f"(ran {time.perf_counter() - t0:.0f} s)")
        finally:
            nginx.stop()


if __name__ == "__main__":
    main()
