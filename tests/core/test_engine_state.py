"""The state machine with the engine view, as tables: timed probe results in, states out.
Stalled -> degraded (engine_stalled) even while every probe passes; busy -> overloaded, never
down or degraded; and what must not conclude anything (idle, restarts, pauses, stale views)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exporter.engine.progress import EnginePolicy
from exporter.engine.state import Policy, State, TargetStatus, begin_grace, observe
from exporter.probes.results import Check, EngineSample, ProbeResult, Reason

H, M, C, E = Check.HEALTH, Check.MODELS, Check.CHAT, Check.ENGINE
EP = EnginePolicy(stall_after=20, queue_saturated=5, kv_saturated=0.8, slow_chat=15, fresh_for=20)
POLICY = Policy(checks=(H, M, C, E), failures_to_down=3, engine=EP)


@dataclass(frozen=True)
class Step:
    t: float
    result: ProbeResult


def health(t: float, reason: Reason | None = None) -> Step:
    status = 200 if reason is None else None
    return Step(t, ProbeResult(H, reason is None, 0.01, t, status, reason))


def models(t: float) -> Step:
    return Step(t, ProbeResult(M, True, 0.01, t, 200))


def chat(t: float, duration: float = 0.3, reason: Reason | None = None) -> Step:
    status = 200 if reason in (None, Reason.TIMEOUT) else None
    return Step(t, ProbeResult(C, reason is None, duration, t, status, reason))


def engine(
    t: float, progress: float, running: float = 1, waiting: float = 0, kv: float = 0.2
) -> Step:
    sample = EngineSample("vllm", running, waiting, kv, progress, progress)
    return Step(t, ProbeResult(E, True, 0.01, t, 200, engine=sample))


def no_engine(t: float) -> Step:
    return Step(t, ProbeResult(E, False, 0.01, t, 404, Reason.HTTP_STATUS, "HTTP 404"))


def run(steps: list[Step], policy: Policy = POLICY) -> tuple[list[State], TargetStatus]:
    status = TargetStatus()
    states = []
    for step in sorted(steps, key=lambda s: s.t):
        status, _ = observe(status, "t", step.result, step.t, policy)
        states.append(status.state)
    assert states, "the table ran"
    return states, status


def healthy_start() -> list[Step]:
    return [health(0), models(0.1), chat(0.2), engine(0.3, 100)]


def every(start: float, stop: float, step: float) -> list[float]:
    out, t = [], start
    while t <= stop:
        out.append(t)
        t += step
    return out


def frozen_engine(start: float, stop: float, **kw: float) -> list[Step]:
    return [engine(t, 150, **kw) for t in every(start, stop, 5)]


def probes_pass(start: float, stop: float) -> list[Step]:
    return [health(t + 0.5) for t in every(start, stop, 5)]


# ---- stalled ---------------------------------------------------------------------------------
def test_frozen_counter_with_work_pending_is_degraded_while_every_probe_passes() -> None:
    steps = [*healthy_start(), engine(5, 150), *frozen_engine(10, 40), *probes_pass(5, 40)]
    _, status = run(steps)
    assert status.state is State.DEGRADED and status.reason == "engine_stalled"
    assert "no progress for" in status.detail
    # not before stall_after: 150 was last seen rising at t=5, so up to t=24 it is still up
    early, _ = run([s for s in steps if s.t < 25])
    assert early[-1] is State.UP


@pytest.mark.parametrize(
    ("name", "extra", "final"),
    [
        (
            "idle engine: a frozen counter with nothing pending",
            frozen_engine(5, 60, running=0),
            State.UP,
        ),
        (
            "slow but steady progress",
            [engine(t, 100 + t) for t in every(5, 60, 5)],
            State.UP,
        ),
        (
            "a restart: counters go backwards, then rise",
            [engine(5, 150), engine(10, 3), engine(15, 9), engine(20, 12), engine(25, 30)],
            State.UP,
        ),
        (
            "a pause of the monitor: one sample 60 s later shows what the engine did",
            [engine(5, 150), engine(65, 900)],
            State.UP,
        ),
        (
            "two samples 40 s apart are one window, not a judgement",
            [engine(5, 150), engine(45, 150)],
            State.UP,
        ),
        (
            "a stale view (engine check stopped answering) concludes nothing",
            [engine(5, 150), engine(10, 150), engine(15, 150), engine(20, 150), no_engine(60)],
            State.UP,
        ),
        (
            "no /metrics at all (404): the other checks decide",
            [no_engine(t) for t in every(5, 60, 5)],
            State.UP,
        ),
    ],
)
def test_what_is_not_a_stall(name: str, extra: list[Step], final: State) -> None:
    last = max(s.t for s in extra)
    states, status = run([*healthy_start(), *extra, *probes_pass(5, last + 1)])
    assert status.state is final, name
    assert State.DEGRADED not in states, name


def test_a_stall_right_after_a_recovery_action_is_starting_not_degraded() -> None:
    status, _ = begin_grace(TargetStatus(), "t", 0.0, 600, "restart")
    for step in sorted([engine(t, 150) for t in every(1, 41, 5)], key=lambda s: s.t):
        status, _ = observe(status, "t", step.result, step.t, POLICY)
    assert status.state is State.STARTING


def test_stall_ends_when_generation_moves_again() -> None:
    steps = [*healthy_start(), *frozen_engine(5, 40), *probes_pass(5, 50), chat(41)]
    steps += [engine(45, 200), engine(50, 260)]
    states, status = run(steps)
    assert State.DEGRADED in states
    assert status.state is State.UP


# ---- overloaded ------------------------------------------------------------------------------
def busy_engine(start: float, stop: float, waiting: float = 40, kv: float = 0.5) -> list[Step]:
    return [
        engine(t, 100 + 50 * t, running=8, waiting=waiting, kv=kv) for t in every(start, stop, 5)
    ]


def chat_timeouts(*ts: float) -> list[Step]:
    return [chat(t, 30.0, Reason.TIMEOUT) for t in ts]


@pytest.mark.parametrize(
    ("name", "steps", "state", "reason"),
    [
        (
            "chat misses its deadline, queue deep, generation advancing -> overloaded",
            [*busy_engine(5, 60), *chat_timeouts(31, 46, 61), *probes_pass(5, 60)],
            State.OVERLOADED,
            "engine_saturated",
        ),
        (
            "KV cache full instead of a queue -> overloaded",
            [*busy_engine(5, 60, waiting=0, kv=0.95), *chat_timeouts(31, 46, 61)],
            State.OVERLOADED,
            "engine_saturated",
        ),
        (
            "chat misses its deadline, engine not saturated -> degraded",
            [*busy_engine(5, 60, waiting=1, kv=0.3), *chat_timeouts(31, 46, 61)],
            State.DEGRADED,
            "chat_timeout",
        ),
        (
            "chat misses its deadline, engine stalled with a deep queue -> degraded",
            [*frozen_engine(5, 60, waiting=40), *chat_timeouts(31, 46, 61)],
            State.DEGRADED,
            "engine_stalled",
        ),
        (
            "chat fails with a 500, engine busy: broken, not busy -> degraded",
            [*busy_engine(5, 60), *[chat(t, 0.2, Reason.SERVER_ERROR) for t in (31, 46, 61)]],
            State.DEGRADED,
            "chat_server_error",
        ),
        (
            "no engine view: chat timeouts stay degraded, as without the engine check",
            [*[no_engine(t) for t in every(5, 60, 5)], *chat_timeouts(31, 46, 61)],
            State.DEGRADED,
            "chat_timeout",
        ),
        (
            "a slow chat answer on a saturated engine -> overloaded",
            [*busy_engine(5, 60), chat(61, 22.0)],
            State.OVERLOADED,
            "engine_saturated",
        ),
        (
            "a fast chat answer on a saturated engine is simply up",
            [*busy_engine(5, 60), chat(61, 1.0)],
            State.UP,
            "all_checks_passed",
        ),
        (
            "/health misses its deadline on a busy engine (ray #54070) -> overloaded, not down",
            [*busy_engine(5, 60), *[health(t, Reason.TIMEOUT) for t in (50, 51, 52)]],
            State.OVERLOADED,
            "engine_saturated",
        ),
        (
            "/health refused while the engine view is fresh -> down, not overloaded",
            [*busy_engine(5, 50), *[health(t, Reason.CONNECT_ERROR) for t in (50, 51, 52)]],
            State.DOWN,
            "health_connect_error",
        ),
    ],
)
def test_busy_or_broken(name: str, steps: list[Step], state: State, reason: str) -> None:
    states, status = run([*healthy_start(), *steps])
    assert (status.state, status.reason) == (state, reason), name
    if state is State.OVERLOADED:
        assert State.DOWN not in states and State.DEGRADED not in states, name
        assert "engine busy, not broken" in status.detail


def test_overloaded_goes_back_to_up_when_chat_is_fast_again() -> None:
    steps = [*healthy_start(), *busy_engine(5, 60), *chat_timeouts(31, 46, 61), chat(62, 0.5)]
    steps += [health(63), models(63.5)]  # the way back: every check re-ran since
    states, status = run(steps)
    assert State.OVERLOADED in states and status.state is State.UP


def test_without_the_engine_check_chat_timeouts_are_degraded() -> None:
    policy = Policy(checks=(H, M, C), failures_to_down=3)
    steps = [health(0), models(0), chat(0), *chat_timeouts(31, 46, 61)]
    _, status = run(steps, policy)
    assert status.state is State.DEGRADED


def test_deadlines_missed_while_saturated_do_not_count_once_the_queue_drains() -> None:
    drained = [engine(t, 100 + 50 * t, running=1, waiting=0, kv=0.2) for t in every(65, 80, 5)]
    # a probe queued during the overload still times out after the drain: the load's fault
    steps = [*healthy_start(), *busy_engine(5, 60), *chat_timeouts(31, 46, 61), *drained]
    states, status = run([*steps, *chat_timeouts(66)])
    assert State.OVERLOADED in states
    assert State.DEGRADED not in states and status.state is State.OVERLOADED
    # but a server that keeps missing them with an empty queue is degraded, N times afresh
    _, status = run([*steps, *chat_timeouts(66, 71, 76)])
    assert status.state is State.DEGRADED and status.reason == "chat_timeout"


async def test_the_recovery_port_carries_the_live_engine_view() -> None:
    """What the recovery receiver's pre-check sees comes from the monitor's engine view,
    not from a fetch of its own."""
    from dataclasses import replace

    from exporter.config import Settings, TargetConfig
    from exporter.engine.monitor import Monitor
    from exporter.engine.progress import fold_sample
    from exporter.engine.recovery_control import MonitorControl

    class NoProbes:
        async def probe_now(self, name: str) -> list[ProbeResult]:
            return [ProbeResult(C, False, 30.0, 90.0, 200, Reason.TIMEOUT)]

    settings = Settings(targets=[TargetConfig(name="t", url="http://x:1")], history_file=None)
    monitor = Monitor(settings, clock=lambda: 100.0)
    control = MonitorControl(monitor, NoProbes())  # type: ignore[arg-type]
    rt = monitor.targets["t"]
    busy = EngineSample("vllm", 8, 40, 0.5, 1000, 1000)
    view = fold_sample(fold_sample(None, busy, 90.0), replace(busy, progress=2000), 95.0)
    rt.status = replace(rt.status, engine=view)
    check = await control.check_now("t")
    assert check.engine_waiting == 40 and check.overloaded is not None
    assert "40 requests waiting" in check.overloaded
    rt.status = replace(rt.status, engine=replace(view, time=10.0))  # stale: says nothing
    check = await control.check_now("t")
    assert (check.overloaded, check.engine_waiting) == (None, None)


def test_a_counter_reset_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    from exporter.config import Settings, TargetConfig
    from exporter.engine.monitor import Monitor

    settings = Settings(targets=[TargetConfig(name="t", url="http://x:1")], history_file=None)
    monitor = Monitor(settings, clock=lambda: 100.0)
    for step in (engine(1, 500), engine(2, 600), engine(3, 4), engine(4, 9)):
        monitor.record("t", step.result)
    resets = [r for r in caplog.records if "counters went backwards" in r.getMessage()]
    assert len(resets) == 1 and "target t" in resets[0].getMessage()
