"""The way back is direct: from every unwell state, in every order in which the checks recover
(with stale failures of probes that began during the outage arriving late), the target moves
once, straight to `up`, and only on fresh results."""

from __future__ import annotations

import itertools

import pytest

from exporter.engine.cadence import next_delay
from exporter.engine.state import Policy, State, TargetStatus, Transition, begin_grace, observe
from exporter.probes.results import Check, ProbeResult, Reason

H, M, C = Check.HEALTH, Check.MODELS, Check.CHAT
POLICY = Policy(checks=(H, M, C), failures_to_down=3, successes_to_up=1, startup_grace=600)
STATUS = {
    Reason.CONNECT_ERROR: None,
    Reason.TIMEOUT: None,
    Reason.LOADING: 503,
    Reason.SERVER_ERROR: 500,
    Reason.HTTP_STATUS: 503,
    Reason.MODEL_MISSING: 200,
    Reason.INVALID_RESPONSE: 200,
    Reason.VALIDATION_FAILED: 200,
}


class Clock:
    """Feeds results one second apart and keeps every transition."""

    def __init__(self, status: TargetStatus | None = None, t: float = 1000.0) -> None:
        self.status = status or TargetStatus()
        self.t = t
        self.transitions: list[Transition] = []

    def feed(
        self, check: Check, reason: Reason | None = None, started: float | None = None
    ) -> None:
        self.t += 1
        result = ProbeResult(
            check,
            reason is None,
            0.01,
            self.t if started is None else started,
            200 if reason is None else STATUS[reason],
            reason,
            "" if reason is None else reason.value,
        )
        self.status, tr = observe(self.status, "t", result, self.t, POLICY)
        if tr is not None:
            self.transitions.append(tr)

    def round(self, failing: dict[Check, Reason]) -> None:
        for check in POLICY.checks:
            self.feed(check, failing.get(check))


# each unwell state as a fault seen by the checks: the failing checks and why
FAULTS = {
    "down: refused": (
        State.DOWN,
        {H: Reason.CONNECT_ERROR, M: Reason.CONNECT_ERROR, C: Reason.CONNECT_ERROR},
    ),
    "down: accepts, never answers": (
        State.DOWN,
        {H: Reason.TIMEOUT, M: Reason.TIMEOUT, C: Reason.TIMEOUT},
    ),
    "down: 500 everywhere": (
        State.DOWN,
        {H: Reason.SERVER_ERROR, M: Reason.SERVER_ERROR, C: Reason.SERVER_ERROR},
    ),
    "starting: loading": (
        State.STARTING,
        {H: Reason.LOADING, M: Reason.HTTP_STATUS, C: Reason.HTTP_STATUS},
    ),
    # llama.cpp/SGLang while loading: /health 503 "Loading", /v1/models already 200, chat
    # 503 or even 200 (the simulator's loading fault; issue 23)
    "starting: loading, models answer": (
        State.STARTING,
        {H: Reason.LOADING, C: Reason.HTTP_STATUS},
    ),
    "starting: loading, models and chat answer": (State.STARTING, {H: Reason.LOADING}),
    "degraded: chat hung": (State.DEGRADED, {C: Reason.TIMEOUT}),
    "degraded: garbage": (State.DEGRADED, {C: Reason.INVALID_RESPONSE}),
    "degraded: wrong model": (State.DEGRADED, {M: Reason.MODEL_MISSING, C: Reason.HTTP_STATUS}),
    "degraded: health fails, chat answers": (State.DEGRADED, {H: Reason.SERVER_ERROR}),
}
ORDERS = list(itertools.permutations(POLICY.checks))


def unwell(fault: str, grace: bool = False) -> Clock:
    expected, failing = FAULTS[fault]
    clock = Clock()
    clock.round({})
    assert clock.status.state is State.UP
    if grace:
        clock.status, _ = begin_grace(clock.status, "t", clock.t, 10_000, "restart")
        expected = State.STARTING
    for _ in range(POLICY.failures_to_down + 1):
        clock.round(failing)
    assert clock.status.state is expected, fault
    clock.transitions.clear()
    return clock


@pytest.mark.parametrize("grace", [False, True], ids=["", "in recovery grace"])
@pytest.mark.parametrize("order", ORDERS, ids=lambda o: ">".join(c.value for c in o))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_way_back_is_one_transition_to_up(fault: str, order: tuple, grace: bool) -> None:
    clock = unwell(fault, grace)
    before = clock.status.state
    _, failing = FAULTS[fault]
    outage_started = clock.t - 0.5  # probes in flight since the outage, answering late
    recovered = []
    for check in order:
        clock.feed(check)
        recovered.append(check)
        # every check still failing has a probe from the outage that now fails late: stale
        for other in POLICY.checks:
            if other not in recovered and other in failing:
                clock.feed(other, failing[other], started=outage_started)
        if len(recovered) < len(order) and clock.transitions:
            pytest.fail(f"moved before every check re-ran: {clock.transitions}")
    clock.round({})  # one more round, as the scheduler gives it at once
    assert clock.status.state is State.UP
    assert [(t.from_state, t.to_state) for t in clock.transitions] == [(before, State.UP)]


@pytest.mark.parametrize("fault", [f for f, (s, _) in FAULTS.items() if s is not State.DEGRADED])
def test_a_fresh_failure_after_recovery_still_counts(fault: str) -> None:
    """The way back is not a free pass: health back, chat really broken -> degraded, on
    fresh failures only, with the fresh failure as the reason."""
    clock = unwell(fault)
    clock.feed(H)
    clock.feed(M)
    for _ in range(POLICY.failures_to_down):
        assert clock.status.state is not State.DEGRADED
        clock.feed(C, Reason.VALIDATION_FAILED)
    assert clock.status.state is State.DEGRADED
    assert clock.status.reason == "chat_validation_failed"
    assert len(clock.transitions) == 1


def test_checks_awaiting_a_fresh_result_are_probed_at_once() -> None:
    clock = unwell("down: refused")
    clock.feed(H)
    assert set(clock.status.awaiting(POLICY)) == {M, C}
    assert next_delay(clock.status, C, 15.0, POLICY) == 0.0
    assert next_delay(clock.status, H, 15.0, POLICY) == 15.0
    clock.feed(M)
    clock.feed(C)
    assert clock.status.awaiting(POLICY) == ()
    assert next_delay(clock.status, C, 15.0, POLICY) == 15.0


def test_a_crash_and_quick_return_while_up_is_not_degraded() -> None:
    """Chat hits the refused port three times, /health only twice, then the server is back:
    chat's connection errors are from the outage and must not make the target degraded."""
    clock = Clock()
    clock.round({})
    clock.transitions.clear()
    for _ in range(3):
        clock.feed(C, Reason.CONNECT_ERROR)
    clock.feed(H, Reason.CONNECT_ERROR)
    clock.feed(H, Reason.CONNECT_ERROR)
    clock.feed(H)
    assert clock.status.state is State.UP
    clock.feed(C)
    assert clock.transitions == [] and clock.status.state is State.UP


def test_a_timeout_is_confirmed_at_once_by_concurrent_probes() -> None:
    """A probe that timed out has waited its deadline already: the missing confirmations run
    together, now; other failures are re-probed one by one after retry_interval."""
    from exporter.engine.cadence import confirmations

    clock = Clock()
    clock.round({})
    clock.feed(C, Reason.TIMEOUT)
    assert next_delay(clock.status, C, 15.0, POLICY) == 0.0
    assert confirmations(clock.status, C, POLICY) == POLICY.failures_to_down - 1
    clock.feed(C, Reason.SERVER_ERROR)
    assert next_delay(clock.status, C, 15.0, POLICY) == POLICY.retry_interval
    assert confirmations(clock.status, C, POLICY) == 1
