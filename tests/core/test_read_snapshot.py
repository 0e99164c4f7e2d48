"""Read endpoints render from a snapshot taken at most once a second, encoded off the event
loop: clients looping on `/` and `/api/v1/targets` cannot starve the probes."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from exporter.config import Settings, TargetConfig
from exporter.engine.monitor import Monitor
from exporter.server.snapshot import ViewCache
from exporter.util.text import safe_json

from .live import running_exporter

OFF = {"models": {"enabled": False}, "chat": {"enabled": False}}


def _settings(tmp_path: Path, n: int) -> Settings:
    targets = [
        TargetConfig(name=f"t-{i}", url="http://127.0.0.1:9", checks=OFF, interval=3600)
        for i in range(n)
    ]
    return Settings(targets=targets, history_file=tmp_path / "h.jsonl")


class CountingTargets(dict[str, Any]):
    """The monitor's target table, counting how often a view walks all of it."""

    walks = 0

    def values(self) -> Any:  # type: ignore[override]
        CountingTargets.walks += 1
        return super().values()


async def test_many_readers_cost_one_snapshot_a_second(tmp_path: Path) -> None:
    async with running_exporter(_settings(tmp_path, 500)) as (exporter, base):
        exporter.monitor.targets = CountingTargets(exporter.monitor.targets)
        CountingTargets.walks = 0
        paths = ["/", "/api/v1/targets", "/api/v1/targets/t-7"] * 30
        start = time.monotonic()
        async with httpx.AsyncClient(timeout=60) as client:
            answers = await asyncio.gather(*(client.get(base + p) for p in paths))
        elapsed = time.monotonic() - start
        assert [r.status_code for r in answers] == [200] * len(paths)
        assert len(answers[1].json()["targets"]) == 500
        assert answers[2].json()["name"] == "t-7"
        # one walk per snapshot, at most one snapshot per started second (not one per request)
        assert 1 <= CountingTargets.walks <= elapsed + 2, (CountingTargets.walks, elapsed)


async def test_bodies_are_rendered_once_per_snapshot_off_the_loop(tmp_path: Path) -> None:
    now = [0.0]
    cache = ViewCache(Monitor(_settings(tmp_path, 3)), clock=lambda: now[0])
    threads: list[threading.Thread] = []

    def render(view: dict[str, Any]) -> bytes:
        threads.append(threading.current_thread())
        return safe_json(view) * 100  # large enough to be gzipped (views encode with it)

    bodies = await asyncio.gather(*(cache.body("k", render) for _ in range(20)))
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert all(b is bodies[0] for b in bodies) and len(bodies) == 20
    assert bodies[0].gzipped is not None
    assert gzip.decompress(bodies[0].gzipped) == bodies[0].plain
    now[0] += 0.5  # the same snapshot: no new render
    await cache.body("k", render)
    assert len(threads) == 1 and cache.snapshots == 1
    now[0] += 1.0  # older than max_age: a new snapshot and one new render
    await cache.body("k", render)
    assert len(threads) == 2 and cache.snapshots == 2


async def test_bodies_per_snapshot_are_bounded(tmp_path: Path) -> None:
    cache = ViewCache(Monitor(_settings(tmp_path, 1)), clock=lambda: 0.0, max_bodies=4)
    for i in range(50):  # a client varying ?q= cannot grow the cache
        await cache.body(("page", i), lambda view: b"x")
    assert len(cache._bodies) == 4


async def test_api_answers_gzip_when_asked_and_plain_otherwise(tmp_path: Path) -> None:
    async with running_exporter(_settings(tmp_path, 200)) as (_, base):
        async with httpx.AsyncClient() as client:
            zipped = await client.get(base + "/api/v1/targets")  # httpx asks for gzip
            plain = await client.get(
                base + "/api/v1/targets", headers={"Accept-Encoding": "identity"}
            )
        assert zipped.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert zipped.json()["targets"] == plain.json()["targets"]
        assert len(plain.json()["targets"]) == 200


async def test_a_stale_snapshot_and_its_bodies_are_let_go(tmp_path: Path) -> None:
    now = [0.0]
    cache = ViewCache(Monitor(_settings(tmp_path, 3)), clock=lambda: now[0], max_age=0.01)
    await cache.body("k", lambda view: b"x")
    assert cache._view is not None and cache._bodies
    await asyncio.sleep(0.1)  # the timer ran; the clock says the snapshot is still fresh
    assert cache._view is not None and cache._bodies
    now[0] += 0.01  # stale now: let go at the next expiry (a new snapshot's timer)
    cache._expire()
    assert cache._view is None and not cache._bodies
    await cache.body("k", lambda view: b"y")  # a request after that takes a new snapshot
    assert cache.snapshots == 2 and cache._view is not None
    now[0] += 0.01
    await asyncio.sleep(0.1)  # its own timer lets it go
    assert cache._view is None and not cache._bodies


async def test_metrics_are_streamed_gzipped_or_plain(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def targets_in(text: str) -> set[str]:
        return {
            s.labels["target"]
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if "target" in s.labels
        }

    async with (
        running_exporter(_settings(tmp_path, 600)) as (_, base),
        httpx.AsyncClient() as client,
    ):
        zipped = await client.get(base + "/metrics")  # httpx asks for gzip
        plain = await client.get(base + "/metrics", headers={"Accept-Encoding": "identity"})
    for response in (zipped, plain):  # never whole in memory: no length known up front
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert targets_in(zipped.text) == targets_in(plain.text) == {f"t-{i}" for i in range(600)}


async def test_a_snapshot_that_expires_while_it_renders_is_not_kept(tmp_path: Path) -> None:
    """A render slower than `max_age` (10,000 targets on a busy machine): the snapshot's timer
    fires first; the body must not then be cached, or the whole snapshot stays alive until the
    next request (issue 26: ~300 MB at 10,000 targets, with no client)."""
    cache = ViewCache(Monitor(_settings(tmp_path, 3)), max_age=0.01)

    def slow(view: dict[str, object]) -> bytes:
        time.sleep(0.2)  # in the worker thread, while the loop runs the expiry timer
        return b"x"

    body = await cache.body("k", slow)
    assert body.plain == b"x"
    await asyncio.sleep(0.1)
    assert cache._view is None and not cache._bodies


def test_a_snapshot_keeps_recent_results_packed(tmp_path: Path) -> None:
    """A target's 60 recent results are one bytes object in a snapshot, read as dicts only
    while encoding: a snapshot of 1,000 full rings is a few MB, not 60,000 dicts (~15 MB; at
    10,000 targets polled every 5 s, the difference was most of the RSS growth of issue 26)."""
    import tracemalloc

    from exporter.probes.results import Check
    from exporter.server.views import targets_view

    monitor = Monitor(_settings(tmp_path, 1000))
    for rt in monitor.targets.values():
        for k in range(60):
            rt.recent.append(1000.0 + k, Check.HEALTH, k % 2 == 0, 0.05, 0.01 if k % 3 else None)
    tracemalloc.start()
    try:
        view = targets_view(monitor, 0.0)
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    first = next(iter(monitor.targets.values()))
    recent = view["targets"][0]["recent"]
    assert len(recent) == 60 and recent == list(first.recent) and recent[-1] == list(recent)[-1]
    assert recent[0] == {"time": 1000.0, "check": "health", "success": True,
                         "duration": 0.05, "ttft": None}  # fmt: skip
    assert json.loads(safe_json(view))["targets"][0]["recent"] == list(first.recent)
    assert size < 6 << 20, f"a snapshot of 1,000 targets took {size} bytes"
