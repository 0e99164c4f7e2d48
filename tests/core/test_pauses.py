"""The exporter's own pauses are its own: a probe that timed out while the event loop was held
is asked again rather than counted against the target, and the lag is exported."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from exporter.config import Settings, TargetConfig
from exporter.engine.monitor import Monitor
from exporter.engine.pauses import PauseWatch
from exporter.engine.scheduler import Scheduler
from exporter.metrics.collector import ExporterCollector
from exporter.probes import make_client
from exporter.probes.results import Check
from tests.servers import serve_aiohttp


def test_paused_during_sums_the_overlap() -> None:
    watch = PauseWatch()
    watch.note(100.0, 100.5)
    watch.note(101.0, 103.0)
    assert watch.paused_during(99.0, 100.25) == pytest.approx(0.25)
    assert watch.paused_during(100.2, 102.0) == pytest.approx(0.3 + 1.0)
    assert watch.paused_during(103.5, 110.0) == 0.0
    # a tenth of the window or more excuses a timeout; less does not
    assert watch.excuses(100.0, 2.0) == pytest.approx(1.5)
    assert watch.excuses(99.0, 10.0) == pytest.approx(2.5)
    assert watch.excuses(95.0, 5.2) == 0.0  # 0.2 s of a 5.2 s window: the server's own timeout
    assert watch.longest == pytest.approx(2.0)


async def test_watch_sees_a_held_loop() -> None:
    watch = PauseWatch()
    watch.start()
    try:
        await asyncio.sleep(0.15)
        began = time.time()
        time.sleep(0.4)  # the loop held, as a long callback or a full collection would
        await asyncio.sleep(0.25)
    finally:
        await watch.stop()
    held = watch.paused_during(began, time.time())
    assert 0.2 <= held <= 1.5  # at least most of the 0.4 s; more on a loaded machine
    assert watch.lag.count >= 3
    registry = CollectorRegistry()
    registry.register(ExporterCollector(Monitor(Settings(history_file=None)), watch))
    over = registry.get_sample_value("llm_exporter_event_loop_lag_seconds_bucket", {"le": "0.1"})
    total = registry.get_sample_value("llm_exporter_event_loop_lag_seconds_count")
    assert total == watch.lag.count and over is not None and over < total


async def test_timeout_during_own_pause_is_asked_again() -> None:
    """/health answers after 0.3 s; the probe's deadline is 0.2 s, and the first probe runs
    while the loop is held for 0.5 s. The first timeout is the exporter's: asked again and not
    recorded; the second, with no pause, is the server's and counts."""
    from aiohttp import web

    answered = 0

    async def health(request: web.Request) -> web.Response:
        nonlocal answered
        answered += 1
        await asyncio.sleep(0.3)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    async with serve_aiohttp(app) as url:
        target = TargetConfig(
            name="t",
            url=url,
            checks={"health": {"timeout": 0.2}, "models": {"enabled": False},
                    "chat": {"enabled": False}, "engine": {"enabled": False}},
        )  # fmt: skip
        monitor = Monitor(Settings(targets=[target], history_file=None))
        watch = PauseWatch()
        client = make_client()
        scheduler = Scheduler(monitor, client, pauses=watch)
        try:
            now = time.time()
            watch.note(now - 0.05, now + 0.15)  # held for most of the next probe, not after
            result = await scheduler.probe("t", Check.HEALTH)
        finally:
            await client.aclose()
    assert result is not None and result.reason is not None
    assert result.reason.value == "timeout"
    assert watch.retries == 1
    assert answered == 2  # asked again
    assert monitor.targets["t"].probes[Check.HEALTH] == 1  # only the second one counted


async def test_timeout_held_twice_is_the_exporters_fault() -> None:
    """Both the probe and its second asking fall in the exporter's own pause: neither is the
    server's. Nothing is counted against the target (its state stays unknown); the exporter
    counts it as its own (`llm_exporter_errors_total{kind="loop_held"}`) and lists it."""
    from aiohttp import web

    from exporter.util.faults import FAULTS, FaultKind

    async def health(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    before = FAULTS.counts[FaultKind.LOOP_HELD]
    async with serve_aiohttp(app) as url:
        target = TargetConfig(
            name="held",
            url=url,
            checks={"health": {"timeout": 0.2}, "models": {"enabled": False},
                    "chat": {"enabled": False}, "engine": {"enabled": False}},
            thresholds={"failures_to_down": 1},
        )  # fmt: skip
        monitor = Monitor(Settings(targets=[target], history_file=None))
        watch = PauseWatch()
        client = make_client()
        scheduler = Scheduler(monitor, client, pauses=watch)
        try:
            now = time.time()
            watch.note(now, now + 5.0)  # held throughout both askings
            result = await scheduler.probe("held", Check.HEALTH)
            listed = [f.target for f in FAULTS.open.values()]
            # many short delays (a busy machine) are not one stall: that timeout counts
            watch2 = PauseWatch()
            for k in range(40):
                t = time.time() + k * 0.05
                watch2.note(t, t + 0.04)
            busy = Scheduler(monitor, client, pauses=watch2)
            counted = await busy.probe("held", Check.HEALTH)
        finally:
            await client.aclose()
    assert result is not None and result.fault == "loop_held"
    assert counted is not None and counted.fault is None and counted.reason is not None
    rt = monitor.targets["held"]
    assert rt.probes[Check.HEALTH] == 1 and rt.status.state.value == "down"
    assert FAULTS.counts[FaultKind.LOOP_HELD] == before + 1
    assert "held" in listed  # shown as ours until a real result of that check came
