"""The state machine as tables: a sequence of probe results in, the states a user sees out."""

from __future__ import annotations

import pytest

from exporter.engine.cadence import NO_METRICS_RECHECK, next_delay
from exporter.engine.state import Policy, State, TargetStatus, begin_grace, observe
from exporter.probes.results import Check, EngineSample, ProbeResult, Reason

H, M, C = Check.HEALTH, Check.MODELS, Check.CHAT
POLICY = Policy(checks=(H, M, C), failures_to_down=3, successes_to_up=1, startup_grace=600)


def ok(check: Check) -> tuple[Check, bool, Reason | None]:
    return (check, True, None)


def bad(check: Check, reason: Reason = Reason.CONNECT_ERROR) -> tuple[Check, bool, Reason | None]:
    return (check, False, reason)


ALL_OK = [ok(H), ok(M), ok(C)]


def run(
    steps: list[tuple[Check, bool, Reason | None]],
    policy: Policy = POLICY,
    status: TargetStatus | None = None,
    t0: float = 1000.0,
) -> tuple[list[State], TargetStatus]:
    status = status or TargetStatus()
    states = []
    for i, (check, success, reason) in enumerate(steps):
        now = t0 + i
        result = ProbeResult(
            check, success, 0.01, now, 200 if reason in (None, Reason.LOADING) else None, reason
        )
        status, _ = observe(status, "t", result, now, policy)
        states.append(status.state)
    return states, status


@pytest.mark.parametrize(
    ("name", "steps", "final"),
    [
        ("all checks pass -> up", ALL_OK, State.UP),
        ("health alone is not enough", [ok(H), ok(M)], State.UNKNOWN),
        ("a single failure is noise", [*ALL_OK, bad(H), ok(H)], State.UP),
        ("two failures are not down", [*ALL_OK, bad(H), bad(H)], State.UP),
        ("three consecutive failures -> down", [*ALL_OK, bad(H), bad(H), bad(H)], State.DOWN),
        ("failures never confirmed from unknown -> down", [bad(H), bad(H), bad(H)], State.DOWN),
        (
            "health ok but chat fails 3x -> degraded",
            [
                *ALL_OK,
                bad(C, Reason.TIMEOUT),
                ok(H),
                bad(C, Reason.TIMEOUT),
                bad(C, Reason.TIMEOUT),
            ],
            State.DEGRADED,
        ),
        (
            "wrong answer 3x -> degraded",
            [*ALL_OK, *[bad(C, Reason.VALIDATION_FAILED)] * 3],
            State.DEGRADED,
        ),
        (
            "model missing 3x -> degraded",
            [*ALL_OK, *[bad(M, Reason.MODEL_MISSING)] * 3],
            State.DEGRADED,
        ),
        ("503 loading -> starting at once", [bad(H, Reason.LOADING)], State.STARTING),
        ("loading is never down", [*ALL_OK, *[bad(H, Reason.LOADING)] * 10], State.STARTING),
        ("loaded -> up", [*[bad(H, Reason.LOADING)] * 3, *ALL_OK], State.UP),
        ("down recovers with one good round", [*ALL_OK, *[bad(H)] * 3, *ALL_OK], State.UP),
        (
            "health fails but chat answered since -> degraded, not down",
            [
                *ALL_OK,
                bad(H, Reason.TIMEOUT),
                ok(C),
                bad(H, Reason.TIMEOUT),
                bad(H, Reason.TIMEOUT),
            ],
            State.DEGRADED,
        ),
    ],
)
def test_table(name: str, steps: list, final: State) -> None:
    _, status = run(steps)
    assert status.state is final, name


def test_down_needs_n_consecutive_not_n_total() -> None:
    states, _ = run([*ALL_OK, bad(H), ok(H), bad(H), ok(H), bad(H), ok(H), bad(H)])
    assert State.DOWN not in states


def test_recovery_needs_m_successes() -> None:
    policy = Policy(checks=(H,), failures_to_down=3, successes_to_up=2)
    states, _ = run([ok(H), ok(H), bad(H), bad(H), bad(H), ok(H), ok(H)], policy)
    assert states == [State.UNKNOWN, State.UP, State.UP, State.UP, State.DOWN, State.DOWN, State.UP]


def test_loading_for_longer_than_the_startup_grace_is_down() -> None:
    policy = Policy(checks=(H,), startup_grace=5)
    states, status = run([bad(H, Reason.LOADING)] * 8, policy)
    assert states[0] is State.STARTING and states[-1] is State.DOWN
    assert status.reason == "loading_too_long"


def test_recovery_grace_keeps_a_restarting_server_starting() -> None:
    _, status = run(ALL_OK)
    status, tr = begin_grace(status, "t", 2000.0, 60, "restart by recovery")
    assert status.state is State.STARTING and tr is not None and tr.to_state is State.STARTING
    states, status = run([bad(H)] * 10, status=status, t0=2001.0)
    assert set(states) == {State.STARTING}
    states, status = run(ALL_OK, status=status, t0=2020.0)
    assert states[-1] is State.UP and status.grace_until is None


def test_grace_expiry_lets_failures_count_again() -> None:
    _, status = run(ALL_OK)
    status, _ = begin_grace(status, "t", 2000.0, 5, "restart")
    states, _ = run([bad(H)] * 10, status=status, t0=2001.0)
    assert states[0] is State.STARTING and states[-1] is State.DOWN


def test_transitions_carry_reason_and_detail() -> None:
    status = TargetStatus()
    transitions = []
    for i, (c, s, r) in enumerate([*ALL_OK, bad(H), bad(H), bad(H)]):
        res = ProbeResult(c, s, 0.01, 1000.0 + i, None, r, "refused")
        status, tr = observe(status, "t", res, 1000.0 + i, POLICY)
        if tr:
            transitions.append(tr)
    assert [(t.from_state, t.to_state) for t in transitions] == [
        (State.UNKNOWN, State.UP),
        (State.UP, State.DOWN),
    ]
    assert transitions[1].reason == "health_connect_error" and "refused" in transitions[1].detail


def test_reprobe_fast_on_first_failure_then_calm_down() -> None:
    _, status = run([*ALL_OK, bad(H)])
    assert next_delay(status, H, 15.0, POLICY) == POLICY.retry_interval
    _, status = run([*ALL_OK, bad(H), bad(H), bad(H)])
    assert status.state is State.DOWN
    assert POLICY.retry_interval < next_delay(status, H, 15.0, POLICY) < 15.0
    _, status = run(ALL_OK)
    assert next_delay(status, H, 15.0, POLICY) == 15.0


def test_a_crash_seen_first_by_chat_is_down_not_degraded() -> None:
    """Chat runs into the refused port before /health re-probes: the server is gone, and the
    history must not claim it was degraded on the way."""
    states, status = run([*ALL_OK, bad(C), bad(C), bad(C), bad(H), bad(H), bad(H)])
    assert State.DEGRADED not in states and status.state is State.DOWN


def test_chat_refused_while_health_keeps_passing_is_degraded() -> None:
    states, _ = run([*ALL_OK, bad(C), bad(C), bad(C), ok(H)])
    assert states[-1] is State.DEGRADED


def test_a_server_without_a_metrics_page_is_asked_once_a_minute() -> None:
    """No engine view (a 404, llama-server's 501 without --metrics, a page without the
    server's series: a passing result without a sample) is no fault: the engine check backs
    off to once a minute (it may be restarted with metrics on), while a page with a sample,
    or a failed read, keeps its cadence."""
    policy = Policy(checks=(H, M, C, Check.ENGINE))
    _, status = run(ALL_OK, policy)
    sample = EngineSample("llamacpp", 0, 0, None, 10, 10)
    rows = (
        (404, True, None, NO_METRICS_RECHECK),
        (501, True, None, NO_METRICS_RECHECK),
        (200, True, None, NO_METRICS_RECHECK),
        (200, True, sample, 5.0),
        (200, False, None, 5.0),
    )
    for code, success, engine, want in rows:
        result = ProbeResult(Check.ENGINE, success, 0.01, 2000.0, code, engine=engine)
        status, _ = observe(status, "t", result, 2000.0, policy)
        assert status.state is State.UP  # the engine check alone never fails a target
        assert next_delay(status, Check.ENGINE, 5.0, policy) == want, (code, success, engine)
