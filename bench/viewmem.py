"""RSS of the read views alone (issue 26), in one process: N targets probed once (refused
loopback addresses), probing stopped, every target's recent ring filled (60 results, as after
a few minutes of running), then `/api/v1/targets` and `/metrics` read `--polls` times, a
snapshot apart, through the app in process. Prints RSS as it goes, with no client after, and
after an explicit malloc_trim (what the allocator kept but did not use).

bench/viewpoll.py measures the same against a running `llm-heartbeat run` over minutes; this
isolates the views from probing, for a before/after of a change to them.

Run: python -m bench.viewmem [--targets 10000] [--polls 15]. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import os
import time

import httpx

from bench.viewpoll import rss_of
from exporter.config import Settings, TargetConfig
from exporter.probes.results import Check
from exporter.runtime import Exporter

__all__ = ["main"]


def _rss() -> float:
    return rss_of(os.getpid())


async def measure(n: int, polls: int) -> None:
    checks = {"models": {"enabled": False}, "chat": {"enabled": False}}
    targets = [
        TargetConfig(
            name=f"t{i:05d}",
            url=f"http://127.1.{i // 250}.{i % 250 + 1}:9",
            interval=30,
            checks=checks,  # type: ignore[arg-type]
        )
        for i in range(n)
    ]
    ex = Exporter(Settings(targets=targets, history_file=None, max_concurrency=256))
    await ex.start()
    while sum(rt.status.state.value == "down" for rt in ex.monitor.targets.values()) < n * 0.95:
        await asyncio.sleep(2)
    await ex.scheduler.stop()
    now = time.time()
    for rt in ex.monitor.targets.values():
        for k in range(60):
            rt.recent.append(now - 600 + k * 10, Check.HEALTH, False, 0.05, None)
        rt.version += 1
    gc.collect()
    print(f"{n} targets probed, rings full: RSS {_rss():.0f} MiB", flush=True)
    transport = httpx.ASGITransport(app=ex.app)
    headers = {"Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://x", timeout=600, headers=headers
    ) as c:
        for i in range(polls):
            t = time.monotonic()
            api = await c.get("/api/v1/targets")
            metrics = await c.get("/metrics")
            took = time.monotonic() - t
            sizes = len(api.content), len(metrics.content)
            del api, metrics
            # httpx's in-process client leaves its response in a reference cycle (with the
            # body's chunks) that only a full collection frees: the client's memory, not the
            # exporter's, so it is collected here (a real client is another process)
            gc.collect()
            await asyncio.sleep(1.2)  # the snapshot (max_age 1 s) is let go
            if i % 5 == 4 or i == 0:
                print(
                    f"  poll {i:3d}: RSS {_rss():5.0f} MiB  (api {sizes[0] / 1e6:.1f} MB"
                    f" JSON, metrics {sizes[1] / 1e6:.1f} MB, {took:.1f}s)",
                    flush=True,
                )
    await asyncio.sleep(3)
    gc.collect()
    print(f"  no client: RSS {_rss():.0f} MiB", flush=True)
    name = ctypes.util.find_library("c")
    if name is not None:
        ctypes.CDLL(name).malloc_trim(0)
        print(f"  after malloc_trim: RSS {_rss():.0f} MiB", flush=True)
    await ex.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--targets", type=int, default=10_000)
    p.add_argument("--polls", type=int, default=15)
    a = p.parse_args(argv)
    asyncio.run(measure(a.targets, a.polls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
