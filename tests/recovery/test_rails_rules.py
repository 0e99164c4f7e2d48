"""The rails' boundaries, as tables over the pure functions (`decide`, `earliest_next`,
`should_exhaust`, `TargetRecord.prune`): when the next restart may start, when the target
is given up, and that a success ends a failure streak (the backoff starts over)."""

from __future__ import annotations

import pytest

from exporter.config.recovery import RailsConfig
from exporter.recovery.rails import Attempt, TargetRecord, decide, earliest_next, should_exhaust

RAILS = RailsConfig(cooldown=60, max_attempts=3, window=3600, backoff_base=100, backoff_max=1000)
MANY = RailsConfig(cooldown=30, max_attempts=9, window=3600, backoff_base=100, backoff_max=1000)


def attempt(at: float, result: str | None, took: float | None = 10) -> Attempt:
    finished = None if took is None else at + took
    return Attempt(started_at=at, rule="r", action="command", finished_at=finished, result=result)


@pytest.mark.parametrize(
    ("name", "attempts", "expected"),
    [
        ("after a success: the cooldown, from its end", [attempt(0, "success")], 10 + 30),
        ("one failure: the base backoff", [attempt(0, "failed")], 10 + 100),
        ("two failures: doubled", [attempt(0, "failed"), attempt(200, "failed")], 210 + 200),
        (
            "a success ends the failure streak: the backoff starts over",
            [
                attempt(0, "failed"),
                attempt(200, "failed"),
                attempt(500, "success"),
                attempt(700, "failed"),
            ],
            710 + 100,
        ),
        (
            "failures before a success count for nothing",
            [attempt(0, "failed"), attempt(200, "failed"), attempt(500, "success")],
            510 + 30,
        ),
        (
            "an attempt still being verified counts as not successful",
            [attempt(0, "failed"), attempt(200, None)],
            210 + 200,
        ),
        ("no finish time: measured from the start", [attempt(0, "failed", took=None)], 0 + 100),
        (
            "a failure that left the window does not double the backoff",
            [attempt(0, "failed"), attempt(4000, "failed")],
            4010 + 100,
        ),
    ],
)
def test_when_the_next_attempt_may_start(
    name: str, attempts: list[Attempt], expected: float
) -> None:
    rec = TargetRecord(attempts=attempts)
    now = attempts[-1].ended_at + 1
    assert earliest_next(rec, now, MANY) == expected, name
    assert decide(rec, expected - 0.5, MANY).verdict == "skipped_cooldown", name
    assert decide(rec, expected - 0.5, MANY).next_allowed_at == expected, name
    assert decide(rec, expected, MANY).verdict == "go", name  # the boundary itself: allowed


def test_the_cooldown_wins_over_a_shorter_backoff_and_the_cap_over_a_longer_one() -> None:
    long_cooldown = RailsConfig(
        cooldown=500, max_attempts=9, window=1e6, backoff_base=100, backoff_max=1000
    )
    assert (
        earliest_next(TargetRecord(attempts=[attempt(0, "failed")]), 20, long_cooldown) == 10 + 500
    )
    streak = [attempt(i * 5000, "failed") for i in range(6)]  # 100 * 2**5 = 3200 > the cap
    assert earliest_next(TargetRecord(attempts=streak), 25020, long_cooldown) == 25010 + 1000
    assert earliest_next(TargetRecord(), 0, RAILS) is None


@pytest.mark.parametrize(
    ("name", "starts", "now", "verdict"),
    [
        ("two of three attempts in the window", [0, 1000], 2000, "go"),
        ("three of three: exhausted", [0, 1000, 2000], 3000, "skipped_exhausted"),
        ("the oldest exactly one window ago has left it", [0, 1000, 2000], 3600, "go"),
        ("the oldest just inside the window", [0, 1000, 2000], 3599, "skipped_exhausted"),
    ],
)
def test_attempts_per_window(name: str, starts: list[float], now: float, verdict: str) -> None:
    rec = TargetRecord(attempts=[attempt(t, "success") for t in starts])
    decision = decide(rec, now, RAILS)
    assert decision.verdict == verdict, name
    assert decision.exhaust is (verdict == "skipped_exhausted"), name


@pytest.mark.parametrize(
    ("name", "results", "now", "exhaust"),
    [
        ("the third attempt in the window failed", ["failed", "failed", "failed"], 2010, True),
        ("the third attempt succeeded", ["failed", "failed", "success"], 2010, False),
        ("two failed attempts are not yet K", ["failed", "failed"], 1010, False),
        ("the first of three left the window", ["failed", "failed", "failed"], 3600, False),
        ("none", [], 10, False),
    ],
)
def test_should_exhaust(name: str, results: list[str], now: float, exhaust: bool) -> None:
    rec = TargetRecord(attempts=[attempt(i * 1000, r) for i, r in enumerate(results)])
    assert should_exhaust(rec, now, RAILS) is exhaust, name


def test_in_progress_and_given_up_come_before_every_other_rail() -> None:
    rec = TargetRecord(attempts=[attempt(0, "failed")], busy=True, exhausted=True)
    assert decide(rec, 5, RAILS).verdict == "skipped_in_progress"
    rec.busy = False
    assert decide(rec, 1e9, RAILS).verdict == "skipped_exhausted"


def test_prune_forgets_only_what_no_rail_can_see() -> None:
    horizon = 3600  # the longest of window, cooldown and backoff_max
    rec = TargetRecord(
        attempts=[attempt(0, "failed"), attempt(100, "failed"), attempt(2000, "failed")]
    )
    rec.prune(110 + horizon, RAILS)  # the first ended at 10, the second exactly at the horizon
    assert [a.started_at for a in rec.attempts] == [2000]
    rec = TargetRecord(attempts=[attempt(0, "failed"), attempt(100, "failed")])
    rec.prune(109 + horizon, RAILS)
    assert [a.started_at for a in rec.attempts] == [100]  # one second inside the horizon


def test_the_last_attempt_is_the_latest_started() -> None:
    assert TargetRecord().last_attempt_at is None
    three = [attempt(0, "failed"), attempt(100, "failed"), attempt(200, None)]
    assert TargetRecord(attempts=three).last_attempt_at == 200


def test_prune_keeps_every_attempt_a_rail_can_see_and_else_only_the_last() -> None:
    rec = TargetRecord(
        attempts=[attempt(0, "failed"), attempt(2000, "failed"), attempt(3000, "failed")]
    )
    rec.prune(3700, RAILS)  # horizon 3600: ended after t=100
    assert [a.started_at for a in rec.attempts] == [2000, 3000]
    rec = TargetRecord(
        attempts=[attempt(0, "failed"), attempt(10, "failed"), attempt(20, "failed")]
    )
    rec.prune(1e7, RAILS)
    assert [a.started_at for a in rec.attempts] == [20]


def test_the_cooldown_reason_says_how_long_to_wait() -> None:
    rec = TargetRecord(attempts=[attempt(0, "success")])
    decision = decide(rec, 20, RAILS)  # the cooldown ends at 10 + 60
    assert decision.reason == "next attempt allowed in 50s"


def test_a_failure_that_left_the_window_adds_no_backoff() -> None:
    short = RailsConfig(cooldown=10, max_attempts=3, window=60, backoff_base=100, backoff_max=1000)
    rec = TargetRecord(attempts=[attempt(0, "failed")])
    assert earliest_next(rec, 65, short) == 10 + 10  # the cooldown only
    assert decide(rec, 65, short).verdict == "go"
