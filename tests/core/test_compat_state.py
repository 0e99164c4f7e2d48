"""The state machine with checks a server does not offer and servers that rate-limit (issue 27):
a 404 on /health is no failure, a 429 is busy, never broken."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exporter.engine.cadence import next_delay
from exporter.engine.progress import EnginePolicy
from exporter.engine.state import Policy, State, TargetStatus, observe, offered_policy
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.probes.servers import NOT_OFFERED_RECHECK

H, M, C = Check.HEALTH, Check.MODELS, Check.CHAT
POLICY = Policy(checks=(H, M, C), failures_to_down=3, successes_to_up=1, startup_grace=600)


@dataclass(frozen=True)
class Step:
    check: Check
    reason: Reason | None = None  # None: passed
    status: int | None = 200
    retry_after: float | None = None


def ok(check: Check) -> Step:
    return Step(check)


NO_HEALTH = Step(H, Reason.NOT_OFFERED, 404)
REFUSED = Reason.CONNECT_ERROR


def limited(check: Check, retry_after: float | None = None) -> Step:
    return Step(check, Reason.RATE_LIMITED, 429, retry_after)


def run(
    steps: list[Step], policy: Policy = POLICY
) -> tuple[list[tuple[State, str]], TargetStatus, Policy]:
    """Feed the steps one a second, as the monitor does (its policy follows what is offered)."""
    status, seen = TargetStatus(), []
    for i, step in enumerate(steps):
        now = 1000.0 + i
        result = ProbeResult(
            step.check,
            step.reason is None,
            0.01,
            now,
            None if step.reason is REFUSED else step.status,
            step.reason,
            retry_after=step.retry_after,
        )
        status, _ = observe(status, "t", result, now, policy)
        policy = offered_policy(policy, status.latest)
        seen.append((status.state, status.reason))
    assert len(seen) == len(steps)
    return seen, status, policy


def test_no_health_endpoint_goes_up_on_the_checks_it_offers() -> None:
    states, status, policy = run([NO_HEALTH, ok(M), ok(C)])
    assert states[-1] == (State.UP, "all_checks_passed")
    assert status.consecutive_failures(H) == 0
    assert policy.unoffered == {H} and policy.primary is M and policy.judged == (M, C)


def test_no_health_endpoint_stays_up_however_often_it_is_asked() -> None:
    states, _, _ = run([NO_HEALTH, ok(M), ok(C), *[NO_HEALTH] * 10, ok(C)])
    assert {s for s, _ in states[2:]} == {State.UP}


def test_without_health_the_models_check_says_down() -> None:
    """The primary falls back to models: a server gone is still down."""
    gone = Step(M, REFUSED)
    states, _, _ = run([NO_HEALTH, ok(M), ok(C), gone, Step(C, REFUSED), gone, gone])
    assert states[-1][0] is State.DOWN and states[-1][1] == "models_connect_error"


def test_without_health_a_failing_chat_is_degraded() -> None:
    bad_chat = Step(C, Reason.TIMEOUT, None)
    states, _, _ = run([NO_HEALTH, ok(M), ok(C), bad_chat, ok(M), bad_chat, bad_chat])
    assert states[-1] == (State.DEGRADED, "chat_timeout")


def test_health_offered_again_is_judged_again() -> None:
    states, _, policy = run([NO_HEALTH, ok(M), ok(C), ok(H)])
    assert states[-1][0] is State.UP and policy.unoffered == frozenset()
    assert policy.primary is H


def test_no_check_left_that_proves_inference_is_unknown_and_says_why() -> None:
    policy = Policy(checks=(H, M), failures_to_down=3)  # chat disabled, no engine view
    states, _, _ = run([ok(H), ok(M), NO_HEALTH, ok(M)], policy)
    assert states[1][0] is State.UP
    assert states[-1] == (State.UNKNOWN, "no_check_offered")


def test_an_engine_view_is_not_needed_to_decide_while_chat_runs() -> None:
    policy = Policy(checks=(H, M, C), engine=EnginePolicy())
    states, _, _ = run([NO_HEALTH, ok(M), ok(C)], policy)
    assert states[-1][0] is State.UP


def test_a_rate_limited_chat_is_overloaded_never_degraded_or_down() -> None:
    steps = [ok(H), ok(M), ok(C), *[limited(C, 30), ok(H), ok(M)] * 6]
    states, status, _ = run(steps)
    assert states[3] == (State.OVERLOADED, "rate_limited")  # at once: the server said so
    assert {s for s, _ in states[3:]} == {State.OVERLOADED}
    assert "Retry-After 30s" in status.detail


def test_rate_limited_models_without_health_is_overloaded_not_down() -> None:
    states, _, _ = run([NO_HEALTH, ok(M), ok(C), *[limited(M), limited(C)] * 4])
    assert {s for s, _ in states[3:]} == {State.OVERLOADED}


def test_the_rate_limit_lifts_and_the_target_is_up_again() -> None:
    states, _, _ = run([ok(H), ok(M), ok(C), limited(C), ok(C), ok(H), ok(M)])
    assert states[3][0] is State.OVERLOADED
    assert states[-1] == (State.UP, "all_checks_passed")


def test_a_gone_server_behind_a_429_is_still_down() -> None:
    """/health refused decides: the 429 came from something else (or long ago)."""
    gone = Step(H, REFUSED)
    states, _, _ = run([ok(H), ok(M), ok(C), limited(C), gone, gone, gone])
    assert states[-1][0] is State.DOWN


@pytest.mark.parametrize(
    ("retry_after", "interval", "expected"),
    [
        (5.0, 15.0, 5.0),  # honoured
        (100.0, 15.0, 15.0),  # capped at the check's interval: never blinded
        (0.0, 15.0, 1.0),  # at least the retry interval
        (None, 15.0, 15.0),  # no Retry-After: the calm cadence, no fast confirmations
    ],
)
def test_the_next_chat_waits_for_retry_after_within_its_interval(
    retry_after: float | None, interval: float, expected: float
) -> None:
    _, status, policy = run([ok(H), ok(M), ok(C), limited(C, retry_after)])
    assert next_delay(status, C, interval, policy) == expected


def test_a_check_not_offered_is_asked_again_every_ten_minutes() -> None:
    _, status, policy = run([NO_HEALTH, ok(M), ok(C)])
    assert next_delay(status, H, 15.0, policy) == NOT_OFFERED_RECHECK == 600.0
    assert next_delay(status, M, 15.0, policy) == 15.0


def test_the_pure_machine_alone_drops_the_check_not_offered() -> None:
    """observe() itself leaves the check out, whatever policy the caller still holds."""
    status = TargetStatus()
    for i, step in enumerate([NO_HEALTH, ok(M), ok(C)]):
        result = ProbeResult(
            step.check, step.reason is None, 0.01, 1000.0 + i, step.status, step.reason
        )
        status, _ = observe(status, "t", result, 1000.0 + i, POLICY)
    assert status.state is State.UP, (status.reason, status.detail)
