"""The decisions a user relies on, pinned through the state machine's public functions
(`observe`, `begin_grace`, `is_stale`, `busy_failure`, `Policy`): which rule wins, what counts
as busy, when loading is too long, that stale results and awaited checks never decide.
Each table row was checked to fail against the mutant of issue 28 it names (bench/mutate.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exporter.config import TargetConfig
from exporter.engine.monitor import policy_for
from exporter.engine.progress import EnginePolicy
from exporter.engine.rules import busy_failure
from exporter.engine.state import Policy, State, TargetStatus, begin_grace, is_stale, observe
from exporter.probes.results import Check, EngineSample, ProbeResult, Reason

H, M, C, E = Check.HEALTH, Check.MODELS, Check.CHAT, Check.ENGINE
EP = EnginePolicy(stall_after=20, queue_saturated=5, kv_saturated=0.8, slow_chat=15, fresh_for=20)
POLICY = Policy(checks=(H, M, C, E), failures_to_down=3, engine=EP)
T0 = 1000.0  # a start time that is not 0 (0 is falsy; the machine must not care)


@dataclass(frozen=True)
class Step:
    t: float
    result: ProbeResult


def probe(check: Check, t: float, reason: Reason | None = None, **kw: object) -> Step:
    """A result of `check` at T0 + t: success without a reason, else that failure."""
    status = kw.pop("status", 200 if reason in (None, Reason.TIMEOUT, Reason.LOADING) else None)
    duration = kw.pop("duration", 0.05)
    return Step(
        T0 + t,
        ProbeResult(check, reason is None, duration, T0 + t, status, reason, **kw),  # type: ignore[arg-type]
    )


def engine(
    t: float, progress: float, running: float = 1, waiting: float = 0, kv: float = 0.2
) -> Step:
    sample = EngineSample("vllm", running, waiting, kv, progress, progress)
    return Step(T0 + t, ProbeResult(E, True, 0.01, T0 + t, 200, engine=sample))


def run(
    steps: list[Step], policy: Policy = POLICY, status: TargetStatus | None = None
) -> tuple[list[tuple[State, str]], TargetStatus]:
    """Observe the steps in time order; the (state, reason) after each."""
    status = status or TargetStatus()
    seen = []
    for step in sorted(steps, key=lambda s: s.t):
        status, _ = observe(status, "t", step.result, step.t, policy)
        seen.append((status.state, status.reason))
    assert seen, "the table ran"
    return seen, status


def up(at: float = 0) -> list[Step]:
    return [probe(H, at), probe(M, at + 0.1), probe(C, at + 0.2), engine(at + 0.3, 100)]


def every(start: float, stop: float, step: float = 5) -> list[float]:
    return [start + i * step for i in range(int((stop - start) / step) + 1)]


def frozen(start: float, stop: float, waiting: float = 4) -> list[Step]:
    """Work pending, the progress counter never rising: a stalled engine."""
    return [engine(t, 150, running=2, waiting=waiting) for t in every(start, stop)]


def busy(start: float, stop: float, waiting: float = 40, kv: float = 0.5) -> list[Step]:
    """A deep queue and generation advancing: saturated, not broken."""
    return [engine(t, 100 + 50 * t, running=8, waiting=waiting, kv=kv) for t in every(start, stop)]


def calm(start: float, stop: float) -> list[Step]:
    """Generation advancing, nothing queued, KV cache mostly free: not busy."""
    return [engine(t, 100 + 50 * t, running=1, waiting=0, kv=0.2) for t in every(start, stop)]


# ---- which rule wins, what is busy -------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "steps", "expected"),
    [
        (
            "a stalled engine wins over a failing primary: degraded engine_stalled, not down",
            [*frozen(5, 60), *[probe(H, t, Reason.CONNECT_ERROR) for t in (50, 51, 52)]],
            (State.DEGRADED, "engine_stalled"),
        ),
        (
            "a slow chat on an engine that is not busy is up, not overloaded",
            [*calm(5, 60), probe(C, 61, duration=22.0)],
            (State.UP, "all_checks_passed"),
        ),
        (
            "a slow chat on a busy engine is overloaded",
            [*busy(5, 60), probe(C, 61, duration=22.0)],
            (State.OVERLOADED, "engine_saturated"),
        ),
        (
            "a chat exactly at slow_chat on a busy engine is slow",
            [*busy(5, 60), probe(C, 61, duration=15.0)],
            (State.OVERLOADED, "engine_saturated"),
        ),
        (
            "a chat just under slow_chat on a busy engine is up",
            [*busy(5, 60), probe(C, 61, duration=14.9)],
            (State.UP, "all_checks_passed"),
        ),
        (
            "a 503 from chat on a busy engine is its 'too busy' answer: overloaded",
            [*busy(5, 60), *[probe(C, t, Reason.HTTP_STATUS, status=503) for t in (31, 46, 61)]],
            (State.OVERLOADED, "engine_saturated"),
        ),
        (
            "a 429 from chat on a busy engine: overloaded",
            [*busy(5, 60), *[probe(C, t, Reason.HTTP_STATUS, status=429) for t in (31, 46, 61)]],
            (State.OVERLOADED, "engine_saturated"),
        ),
        (
            "a 500 from chat on a busy engine is broken: degraded",
            [*busy(5, 60), *[probe(C, t, Reason.HTTP_STATUS, status=500) for t in (31, 46, 61)]],
            (State.DEGRADED, "chat_http_status"),
        ),
        (
            "/health answering 503 (not loading) on a busy engine: overloaded, not down",
            [*busy(5, 60), *[probe(H, t, Reason.HTTP_STATUS, status=503) for t in (50, 51, 52)]],
            (State.OVERLOADED, "engine_saturated"),
        ),
        (
            "two chat failures are not yet degraded (failures_to_down is 3)",
            [*calm(5, 60), *[probe(C, t, Reason.TIMEOUT) for t in (46, 61)]],
            (State.UP, "all_checks_passed"),
        ),
    ],
)
def test_rule_order_and_busy_answers(
    name: str, steps: list[Step], expected: tuple[State, str]
) -> None:
    seen, status = run([*up(), *steps])
    assert (status.state, status.reason) == expected, name
    if expected[0] is State.OVERLOADED:
        assert all(s not in (State.DOWN, State.DEGRADED) for s, _ in seen), name


@pytest.mark.parametrize(
    ("reason", "status", "busy_answer"),
    [
        (Reason.TIMEOUT, None, True),
        (Reason.TIMEOUT, 200, True),  # headers came, the body missed its deadline
        (Reason.HTTP_STATUS, 429, True),
        (Reason.HTTP_STATUS, 503, True),
        (Reason.HTTP_STATUS, 500, False),
        (Reason.HTTP_STATUS, 404, False),
        (Reason.SERVER_ERROR, 500, False),
        (Reason.CONNECT_ERROR, None, False),
        (Reason.INVALID_RESPONSE, 200, False),
    ],
)
def test_what_a_busy_server_answers(reason: Reason, status: int | None, busy_answer: bool) -> None:
    result = ProbeResult(C, False, 1.0, T0, status, reason)
    assert busy_failure(result) is busy_answer


# ---- loading, grace, defaults ------------------------------------------------------------------
def loading(*ts: float) -> list[Step]:
    return [probe(H, t, Reason.LOADING, status=503) for t in ts]


def test_loading_for_longer_than_startup_grace_is_down_only_outside_a_recovery_grace() -> None:
    policy = Policy(checks=(H, M, C), startup_grace=60)
    seen, status = run(loading(0, 30, 60, 61), policy)
    assert seen[2] == (State.STARTING, "loading")  # exactly startup_grace: still starting
    assert seen[3] == (State.DOWN, "loading_too_long")
    assert status.detail == "/health 503 for 61s"
    graced, _ = begin_grace(TargetStatus(), "t", T0, 300, "restarted")
    seen, _ = run(loading(0, 30, 60, 61, 200), policy, graced)
    assert all(s is State.STARTING for s, _ in seen), seen  # the restart is loading the model
    seen, _ = run(loading(0, 30, 60, 61, 200, 300), policy, graced)
    assert seen[-1] == (State.DOWN, "loading_too_long")  # the grace is over at its end


def test_default_thresholds_three_failures_and_ten_minutes_of_loading() -> None:
    """The documented defaults, from a target configured with none, and the machine's own."""
    configured = policy_for(TargetConfig(name="t", url="http://127.0.0.1:9"))
    policy = Policy(checks=(H, M, C))
    for p in (configured, policy):
        assert (p.failures_to_down, p.successes_to_up, p.retry_interval, p.startup_grace) == (
            3,
            1,
            1.0,
            600,
        )
    seen, _ = run([*up()[:3], *[probe(H, t, Reason.CONNECT_ERROR) for t in (1, 2, 3)]], policy)
    assert [s for s, _ in seen[3:]] == [State.UP, State.UP, State.DOWN]
    seen, _ = run(loading(0, 600, 601), policy)
    assert [s for s, _ in seen] == [State.STARTING, State.STARTING, State.DOWN]


# ---- the way back: stale results, awaited checks -----------------------------------------------
def test_failures_of_probes_that_began_before_a_recovery_are_not_counted() -> None:
    policy = Policy(checks=(H, M, C), failures_to_down=3)
    down = [*up()[:3], *[probe(H, t, Reason.CONNECT_ERROR) for t in (1, 2, 3)]]
    back = [probe(H, 20), probe(M, 20.1)]
    # three chat probes that started during the outage report after the recovery
    late = [
        Step(T0 + 21 + i, ProbeResult(C, False, 30.0, T0 + 10 + i, None, Reason.TIMEOUT))
        for i in range(3)
    ]
    status = TargetStatus()
    states = []
    for step in [*down, *back, *late, probe(C, 25)]:
        status, _ = observe(status, "t", step.result, step.t, policy)
        states.append(status.state)
    assert State.DOWN in states and State.DEGRADED not in states, states
    assert states[-1] is State.UP


@pytest.mark.parametrize(
    ("success", "probe_time", "recovered_at", "stale"),
    [
        (False, 10.0, 20.0, True),
        (False, 20.0, 20.0, False),  # began at the recovery: it sees the server now
        (False, 30.0, 20.0, False),
        (True, 10.0, 20.0, False),  # a success is never stale
        (False, 10.0, None, False),  # no recovery yet
    ],
)
def test_is_stale(
    success: bool, probe_time: float, recovered_at: float | None, stale: bool
) -> None:
    status = TargetStatus(recovered_at=recovered_at)
    result = ProbeResult(C, success, 1.0, probe_time, None, None if success else Reason.TIMEOUT)
    assert is_stale(status, result, POLICY) is stale


def test_up_needs_successes_to_up_rounds_of_fresh_results_after_a_recovery() -> None:
    """Results from before the outage must not count towards the way back."""
    policy = Policy(checks=(H, M, C), failures_to_down=3, successes_to_up=2)
    before = [probe(H, 0), probe(M, 0.1), probe(C, 0.2), probe(H, 1), probe(M, 1.1), probe(C, 1.2)]
    outage = [probe(H, t, Reason.CONNECT_ERROR) for t in (2, 3, 4)]
    back = [probe(H, 20), probe(M, 20.1), probe(C, 20.2)]
    seen, _ = run([*before, *outage, *back], policy)
    assert seen[5][0] is State.UP and seen[8][0] is State.DOWN
    assert [s for s, _ in seen[9:]] == [State.DOWN, State.DOWN, State.DOWN]  # one fresh round
    seen, _ = run([*before, *outage, *back, probe(H, 21)], policy)
    assert seen[-1][0] is State.UP  # the second fresh round


def test_overloaded_says_what_the_engine_shows() -> None:
    """The detail a user reads: what was slow, and the queue that explains it."""
    _, status = run([*up(), *busy(5, 60), probe(C, 61, duration=22.0)])
    assert status.state is State.OVERLOADED
    assert status.detail.startswith(
        "chat answered in 22.0s; engine busy, not broken: 40 requests waiting"
    )
    assert "(vllm running=8 waiting=40" in status.detail


def test_a_secondary_that_cannot_connect_does_not_hide_another_that_fails() -> None:
    """models refused (for the primary to judge) while chat answers wrongly: degraded by chat."""
    policy = Policy(checks=(H, M, C), failures_to_down=3)
    refused = [probe(M, t, Reason.CONNECT_ERROR) for t in (10, 11, 12)]
    wrong = [probe(C, t, Reason.VALIDATION_FAILED) for t in (13, 14, 15)]
    _, status = run([*up()[:3], *refused, *wrong], policy)
    assert (status.state, status.reason) == (State.DEGRADED, "chat_validation_failed")
    _, status = run([*up()[:3], *refused], policy)
    assert status.state is State.UP  # models refused alone: not degraded until health passes again


def test_after_a_recovery_no_state_is_decided_until_every_check_reported_again() -> None:
    """health back, chat failing since, models not re-run yet: the verdict waits for models."""
    policy = Policy(checks=(H, M, C), failures_to_down=3)
    down = [*up()[:3], *[probe(H, t, Reason.CONNECT_ERROR) for t in (1, 2, 3)]]
    back = [probe(H, 20), *[probe(C, t, Reason.TIMEOUT) for t in (21, 22, 23)]]
    seen, _ = run([*down, *back], policy)
    assert [s for s, _ in seen[-4:]] == [State.DOWN] * 4
    _, status = run([*down, *back, probe(M, 24)], policy)
    assert (status.state, status.reason) == (State.DEGRADED, "chat_timeout")


@pytest.mark.parametrize(
    ("name", "answered_at", "expected"),
    [
        (
            "chat answered when health began failing: alive",
            10.0,
            (State.DEGRADED, "health_connect_error"),
        ),
        ("chat answered just before: gone", 9.9, (State.DOWN, "health_connect_error")),
    ],
)
def test_down_or_degraded_depends_on_an_answer_since_the_primary_failed(
    name: str, answered_at: float, expected: tuple[State, str]
) -> None:
    policy = Policy(checks=(H, M, C), failures_to_down=3)
    steps = [probe(H, 0), probe(M, 0.1), probe(C, answered_at)]
    _, status = run([*steps, *[probe(H, t, Reason.CONNECT_ERROR) for t in (10, 11, 12)]], policy)
    assert (status.state, status.reason) == expected, name


@pytest.mark.parametrize(
    ("name", "health_at", "expected"),
    [
        ("health passed after models was refused: models' refusal counts", 10.5, State.DEGRADED),
        ("health passed at the same instant: not since", 10.0, State.UP),
    ],
)
def test_a_refused_secondary_counts_once_the_primary_passed_since(
    name: str, health_at: float, expected: State
) -> None:
    policy = Policy(checks=(H, M, C), failures_to_down=3)
    steps = [probe(H, 0), probe(M, 0.1), probe(C, 0.2), probe(H, health_at)]
    refused = [probe(M, t, Reason.CONNECT_ERROR) for t in (10, 11, 12)]
    _, status = run([*steps, *refused], policy)
    assert status.state is expected, name


def test_after_a_recovery_action_up_needs_successes_to_up_fresh_passes() -> None:
    """A restart's grace starts the count over: the passes from before do not count."""
    policy = Policy(checks=(H,), failures_to_down=3, successes_to_up=2)
    _, status = run([probe(H, 0), probe(H, 1)], policy)
    assert status.state is State.UP
    graced, _ = begin_grace(status, "t", T0 + 5, 300, "restarted")
    seen, status = run([probe(H, 10), probe(H, 11)], policy, graced)
    assert [s for s, _ in seen] == [State.STARTING, State.UP]
    assert status.grace_until is None  # back up: the grace has done its job


def test_a_drained_queue_forgets_only_the_deadlines_the_load_explains() -> None:
    """Errors that are not a busy server's (a 500) still count after the queue drains."""
    errors = [probe(C, t, Reason.SERVER_ERROR, status=500) for t in (31, 46, 61)]
    _, status = run([*up(), *busy(5, 45), *calm(50, 60), *errors])
    assert (status.state, status.reason) == (State.DEGRADED, "chat_server_error")
    timeouts = [probe(C, t, Reason.TIMEOUT) for t in (31, 46, 61, 62)]
    _, status = run([*up(), *busy(5, 45), *calm(50, 60), *timeouts])
    assert status.state is State.UP  # two of them were the load's: two timeouts since, not 3
    _, status = run([*up(), *busy(5, 45), *calm(50, 60), *timeouts, probe(C, 63, Reason.TIMEOUT)])
    assert (status.state, status.reason) == (State.DEGRADED, "chat_timeout")


def test_a_failure_from_before_a_recovery_decides_nothing_even_at_one_failure_to_down() -> None:
    """chat back while health's last result is a failure from before: hold until health re-runs."""
    policy = Policy(checks=(H, M, C), failures_to_down=1)
    steps = [*up()[:3], probe(C, 1, Reason.TIMEOUT), probe(H, 2, Reason.CONNECT_ERROR), probe(C, 3)]
    seen, _ = run(steps, policy)
    assert [s for s, _ in seen[3:]] == [State.DEGRADED, State.DOWN, State.DOWN]
    seen, _ = run([*steps, probe(H, 4), probe(M, 4.1)], policy)
    assert seen[-1][0] is State.UP
