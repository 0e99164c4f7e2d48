"""Detection against the simulator, each fault switched on and off while the collector loop
runs: the right state, and on repair one transition straight back to `up` (no stale
`degraded` on the way). Timings are the benchmark's business (bench/detection.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from exporter.config import Settings, TargetConfig
from exporter.engine.monitor import Monitor
from exporter.engine.scheduler import Scheduler
from exporter.engine.state import State, Transition
from exporter.probes import make_client
from exporter.simulate import FaultSpec, Simulator

# fast, so a scenario takes seconds: the shape of the shipped fast profile, scaled down
CHECKS = {
    "health": {"interval": 0.3, "timeout": 0.5},
    "models": {"timeout": 0.5},
    "chat": {"interval": 0.6, "timeout": 5, "ttft_timeout": 0.5, "chunk_timeout": 0.5},
}
THRESHOLDS = {"failures_to_down": 3, "retry_interval": 0.1}

FAULTS = [
    (FaultSpec(kind="down"), State.DOWN),
    (FaultSpec(kind="hang"), State.DOWN),
    (FaultSpec(kind="health_lies"), State.DEGRADED),
    (FaultSpec(kind="garbage"), State.DEGRADED),
    (FaultSpec(kind="loading", seconds=3600), State.STARTING),
    (FaultSpec(kind="model_swap", model="other/model"), State.DEGRADED),
    (FaultSpec(kind="stall", after_tokens=1), State.DEGRADED),
]


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("fault", "expected"), FAULTS, ids=[f.kind for f, _ in FAULTS])
async def test_fault_then_repair(sim: Simulator, fault: FaultSpec, expected: State) -> None:
    target = TargetConfig(
        name="t",
        url=sim.url,
        model="Qwen/Qwen3-4B-Instruct-2507",
        interval=1.0,
        checks=CHECKS,
        thresholds=THRESHOLDS,
    )
    monitor = Monitor(Settings(targets=[target], history_file=None), sinks=[])
    seen: list[Transition] = []
    monitor.sinks.append(seen.append)
    rt = monitor.targets["t"]
    async with make_client() as client:
        scheduler = Scheduler(monitor, client)
        scheduler.start()
        try:
            await wait_until(lambda: rt.status.state is State.UP)
            sim.set_fault(fault)
            await wait_until(lambda: rt.status.state is expected)
            await asyncio.sleep(1.0)  # let stale failures pile up, as a real outage does
            assert rt.status.state is expected
            seen.clear()
            sim.clear_faults()
            await wait_until(lambda: rt.status.state is State.UP)
            await asyncio.sleep(0.5)
        finally:
            await scheduler.stop()
    assert [(t.from_state, t.to_state) for t in seen] == [(expected, State.UP)]


async def test_overloaded_is_never_down(sim: Simulator) -> None:
    """Answers only after a long queue: slow chat, /health fine. Degraded at worst, never down."""
    target = TargetConfig(name="t", url=sim.url, interval=1.0, checks=CHECKS, thresholds=THRESHOLDS)
    monitor = Monitor(Settings(targets=[target], history_file=None), sinks=[])
    rt = monitor.targets["t"]
    states: list[State] = []
    monitor.sinks.append(lambda t: states.append(t.to_state))
    async with make_client() as client:
        scheduler = Scheduler(monitor, client)
        scheduler.start()
        try:
            await wait_until(lambda: rt.status.state is State.UP)
            sim.set_fault(FaultSpec(kind="overloaded", seconds=2.0))
            await wait_until(lambda: rt.status.state is State.DEGRADED)
            await asyncio.sleep(2.0)
        finally:
            await scheduler.stop()
    assert State.DOWN not in states and states[0] is State.UP
