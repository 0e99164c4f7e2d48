"""The rails as pure functions: cooldown, exponential backoff, K attempts per window."""

from __future__ import annotations

from exporter.config.recovery import RailsConfig
from exporter.recovery.rails import Attempt, TargetRecord, decide, earliest_next, should_exhaust

RAILS = RailsConfig(cooldown=60, max_attempts=3, window=3600, backoff_base=100, backoff_max=1000)


def failed(at: float, took: float = 10) -> Attempt:
    return Attempt(
        started_at=at, rule="r", action="command", finished_at=at + took, result="failed"
    )


def test_first_attempt_goes() -> None:
    assert decide(TargetRecord(), 0, RAILS).verdict == "go"


def test_busy_target_is_in_progress() -> None:
    assert decide(TargetRecord(busy=True), 0, RAILS).verdict == "skipped_in_progress"


def test_cooldown_after_a_success() -> None:
    ok = Attempt(started_at=1000, rule="r", action="command", finished_at=1010, result="success")
    rec = TargetRecord(attempts=[ok])
    assert decide(rec, 1060, RAILS).verdict == "skipped_cooldown"
    assert decide(rec, 1071, RAILS).verdict == "go"


def test_backoff_doubles_after_failures() -> None:
    rec = TargetRecord(attempts=[failed(0)])
    assert earliest_next(rec, 20, RAILS) == 10 + 100
    rec.attempts.append(failed(200))
    assert earliest_next(rec, 220, RAILS) == 210 + 200
    big = RailsConfig(cooldown=0, max_attempts=20, window=1e6, backoff_base=100, backoff_max=1000)
    rec = TargetRecord(attempts=[failed(i * 10000) for i in range(8)])
    assert earliest_next(rec, 70011, big) == 70010 + 1000  # capped


def test_k_attempts_in_window_exhaust() -> None:
    rec = TargetRecord(attempts=[failed(0), failed(1000), failed(2000)])
    assert should_exhaust(rec, 2010, RAILS)
    decision = decide(rec, 3000, RAILS)
    assert decision.verdict == "skipped_exhausted"
    assert decision.exhaust
    # attempts that left the window no longer count
    assert decide(rec, 5000, RAILS).verdict == "go"


def test_exhausted_flag_holds_until_reset() -> None:
    rec = TargetRecord(exhausted=True)
    assert decide(rec, 1e9, RAILS).verdict == "skipped_exhausted"
    assert not decide(rec, 1e9, RAILS).exhaust


def test_a_success_as_kth_attempt_does_not_exhaust() -> None:
    ok = Attempt(started_at=2000, rule="r", action="command", finished_at=2010, result="success")
    rec = TargetRecord(attempts=[failed(0), failed(1000), ok])
    assert not should_exhaust(rec, 2010, RAILS)


def test_prune_keeps_the_last_attempt() -> None:
    rec = TargetRecord(attempts=[failed(0), failed(10)])
    rec.prune(1e7, RAILS)
    assert [a.started_at for a in rec.attempts] == [10]
