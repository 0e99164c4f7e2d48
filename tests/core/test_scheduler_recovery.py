"""The scheduler's side of the way back: when the primary check recovers, a probe of another
check still hanging since the outage is abandoned (its answer would describe the outage) and
a fresh one runs at once; and a timeout is confirmed by concurrent probes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from exporter.config import Settings, TargetConfig
from exporter.engine import scheduler as scheduler_module
from exporter.engine.monitor import Monitor
from exporter.engine.scheduler import Scheduler
from exporter.engine.state import State
from exporter.probes import ProbeContext, make_client
from exporter.probes.results import Check, ProbeResult, Reason


class Server:
    """Stand-in probes for a server that can be broken and repaired: health is refused while
    broken; a chat completion that starts while broken never answers."""

    def __init__(self) -> None:
        self.broken = False
        self.chats_started = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def health(self, ctx: ProbeContext) -> ProbeResult:
        if self.broken:
            return ProbeResult(Check.HEALTH, False, 0.001, time.time(), None, Reason.CONNECT_ERROR)
        return ProbeResult(Check.HEALTH, True, 0.001, time.time(), 200)

    async def chat(self, ctx: ProbeContext) -> ProbeResult:
        started = time.time()
        self.chats_started += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.broken:
                await asyncio.sleep(3600)
            return ProbeResult(Check.CHAT, True, 0.001, started, 200)
        finally:
            self.in_flight -= 1


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < end, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    s = Server()
    probes = {Check.HEALTH: s.health, Check.CHAT: s.chat}
    monkeypatch.setattr(scheduler_module, "PROBES", probes)
    return s


def target(chat_timeout: float = 3600) -> TargetConfig:
    return TargetConfig(
        name="t",
        url="http://model.test:8000",
        checks={
            "health": {"interval": 0.05},
            "models": {"enabled": False},
            "chat": {"interval": 3600, "timeout": chat_timeout},
        },
        thresholds={"failures_to_down": 3, "retry_interval": 0.02},
    )


async def test_a_chat_hanging_since_the_outage_is_abandoned_when_health_recovers(
    server: Server,
) -> None:
    monitor = Monitor(Settings(targets=[target()], history_file=None), sinks=[])
    moves: list[tuple[State, State]] = []
    monitor.sinks.append(lambda t: moves.append((t.from_state, t.to_state)))
    rt = monitor.targets["t"]
    async with make_client() as client:
        scheduler = Scheduler(monitor, client)
        scheduler.start()
        try:
            await wait_until(lambda: rt.status.state is State.UP)
            server.broken = True
            await wait_until(lambda: rt.status.state is State.DOWN)
            scheduler.wake("t")  # chat starts now, and hangs
            await wait_until(lambda: server.in_flight == 1)
            server.broken = False
            await wait_until(lambda: rt.status.state is State.UP)
        finally:
            await scheduler.stop()
    assert moves == [(State.UNKNOWN, State.UP), (State.UP, State.DOWN), (State.DOWN, State.UP)]
    assert not [k for k in rt.failures if k[0] is Check.CHAT]  # abandoned, not a failure
    assert server.chats_started == 3  # the first, the hung one, the fresh one


async def test_a_timeout_is_confirmed_by_probes_running_together(server: Server) -> None:
    """The first chat probe times out: the two missing confirmations run at once, together
    (health keeps passing: the state becomes degraded after one more deadline, not two)."""
    monitor = Monitor(Settings(targets=[target(chat_timeout=0.3)], history_file=None), sinks=[])
    rt = monitor.targets["t"]
    in_flight, most = [0], [0]

    async def hung_chat(ctx: ProbeContext) -> ProbeResult:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        try:
            await asyncio.sleep(ctx.timeout)
            return ProbeResult(Check.CHAT, False, ctx.timeout, time.time(), None, Reason.TIMEOUT)
        finally:
            in_flight[0] -= 1

    async with make_client() as client:
        scheduler = Scheduler(monitor, client)
        scheduler.start()
        try:
            await wait_until(lambda: rt.status.state is State.UP)
            scheduler_module.PROBES[Check.CHAT] = hung_chat  # type: ignore[index]
            scheduler.wake("t")
            await wait_until(lambda: rt.status.state is State.DEGRADED)
        finally:
            await scheduler.stop()
    assert most[0] == 2  # the two confirming probes ran together
    assert rt.status.reason == "chat_timeout"
