"""The engine view per engine, as tables: one stalled data-parallel engine is not hidden by a
healthy one (and the detail names it); an engine asleep on purpose is never stalled; a
llama-server whose /metrics stops answering while /health answers is stalled, one that stops
answering everything is down; a chat that times out on a frozen engine is `engine_stalled`
(the cause), the detail keeping both."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.engine.state import State
from exporter.probes.results import Check, EngineSample, EngineUnit, ProbeResult, Reason

from .test_engine_state import POLICY, Step, chat, every, health, healthy_start, models, run

C, E = Check.CHAT, Check.ENGINE


def dp(t: float, p0: float, p1: float, *, waiting1: float = 3, asleep1: bool = False) -> Step:
    """vLLM with two data-parallel engines: engine 0 busy and advancing, engine 1 as given."""
    units = (EngineUnit("0", 2, 0, p0), EngineUnit("1", 1, waiting1, p1, asleep1))
    sample = EngineSample("vllm", 3, waiting1, 0.3, p0 + p1, p0 + p1, engines=units)
    return Step(t, ProbeResult(E, True, 0.01, t, 200, engine=sample))


def llama(t: float, decodes: float, processing: float = 1) -> Step:
    sample = EngineSample("llamacpp", processing, 0, None, decodes, decodes)
    return Step(t, ProbeResult(E, True, 0.01, t, 200, engine=sample))


def metrics_timeout(t: float) -> Step:
    return Step(t, ProbeResult(E, False, 5.0, t, None, Reason.TIMEOUT, "no answer within 5s"))


def test_one_stalled_data_parallel_engine_is_not_hidden_by_the_other() -> None:
    steps = [*healthy_start(), *(health(t + 0.5) for t in every(5, 45, 5))]
    steps += [dp(t, 1000 + 50 * t, 400) for t in every(5, 45, 5)]  # engine 1 frozen at 400
    _, status = run(steps)
    assert status.state is State.DEGRADED and status.reason == "engine_stalled"
    assert "engine 1: no progress for" in status.detail and "engine 0:" not in status.detail
    # the sum of both counters rose all along: summed, the stall would never show
    assert all(
        s.result.engine.progress < n.result.engine.progress  # type: ignore[union-attr]
        for s, n in zip(steps[-9:], steps[-8:], strict=False)
    )


def test_an_engine_asleep_on_purpose_is_never_stalled() -> None:
    steps = [*healthy_start(), *(health(t + 0.5) for t in every(5, 60, 5))]
    steps += [dp(t, 1000 + 50 * t, 400, asleep1=True) for t in every(5, 60, 5)]
    states, status = run(steps)
    assert status.state is State.UP and State.DEGRADED not in states
    assert status.engine is not None and "engine 1 asleep" in status.engine.describe()


def test_llama_server_metrics_unanswered_while_health_answers_is_a_stall() -> None:
    steps = [*healthy_start(), llama(5, 100), llama(10, 120)]
    steps += [metrics_timeout(t) for t in every(15, 45, 5)]
    steps += [health(t + 0.5) for t in every(5, 45, 5)]
    _, status = run(steps)
    assert status.state is State.DEGRADED and status.reason == "engine_stalled"
    assert "metrics unanswered" in status.detail


def test_a_vllm_metrics_timeout_says_nothing_about_its_engine() -> None:
    """vLLM's /metrics is served by its API process, not the engine loop."""
    steps = [*healthy_start()]
    steps += [dp(5, 100, 100), *(metrics_timeout(t) for t in every(10, 45, 5))]
    steps += [health(t + 0.5) for t in every(5, 45, 5)]
    states, status = run(steps)
    assert State.DEGRADED not in states and status.state is State.UP


def test_llama_server_stopped_altogether_is_down_not_stalled() -> None:
    steps = [*healthy_start(), llama(5, 100), llama(10, 120)]
    steps += [metrics_timeout(t) for t in every(15, 60, 5)]
    steps += [health(5.5), health(10.5)]
    steps += [health(t + 0.5, Reason.TIMEOUT) for t in every(15, 60, 5)]
    states, status = run(steps)
    assert status.state is State.DOWN, (states, status.reason)
    assert State.DEGRADED not in states


@pytest.mark.parametrize("with_engine", [True, False])
def test_a_chat_timeout_on_a_frozen_engine_is_the_engines_stall(with_engine: bool) -> None:
    """The chat probe times out (30 s) before the engine window (stall_after 60 s) closes."""
    steps = [health(0), models(0.1), chat(0.2), llama(0.3, 100), llama(5, 150)]
    steps += [health(t + 0.5) for t in every(5, 40, 5)]
    if with_engine:
        steps += [llama(t, 150) for t in every(10, 40, 5)]
    # three probes started at t=6 (the confirmations run together), each ended at its deadline
    steps += [Step(36 + i / 10, ProbeResult(C, False, 30, 6 + i / 10, 200, Reason.TIMEOUT, "no complete answer within 30s"))
              for i in range(3)]  # fmt: skip
    policy = replace(POLICY, engine=replace(POLICY.engine, stall_after=60))
    _, status = run(steps, policy)
    assert status.state is State.DEGRADED
    if with_engine:
        assert status.reason == "engine_stalled", status
        assert "chat: no complete answer within 30s" in status.detail and "engine:" in status.detail
        assert "no progress for" in status.detail
    else:
        assert status.reason == "chat_timeout"


async def test_a_sleeping_engine_is_never_restarted() -> None:
    """The recovery receiver's pre-check hears "asleep on purpose": overload_reason refuses."""
    from exporter.config import Settings, TargetConfig
    from exporter.config.recovery import OverloadConfig
    from exporter.engine.monitor import Monitor
    from exporter.engine.progress import fold_sample
    from exporter.engine.recovery_control import MonitorControl
    from exporter.recovery.overload import overload_reason

    class NoProbes:
        async def probe_now(self, name: str) -> list[ProbeResult]:
            return [ProbeResult(C, False, 30.0, 90.0, 200, Reason.TIMEOUT)]

    settings = Settings(targets=[TargetConfig(name="t", url="http://x:1")], history_file=None)
    monitor = Monitor(settings, clock=lambda: 100.0)
    control = MonitorControl(monitor, NoProbes())  # type: ignore[arg-type]
    rt = monitor.targets["t"]
    asleep = EngineSample("vllm", 0, 2, 0.0, 500, 500, engines=(EngineUnit("0", 0, 2, 500, True),))
    rt.status = replace(rt.status, engine=fold_sample(None, asleep, 95.0))
    check = await control.check_now("t")
    assert check.overloaded is not None and "asleep on purpose" in check.overloaded
    assert overload_reason(check, OverloadConfig()) is not None
    awake = replace(asleep, engines=(EngineUnit("0", 0, 2, 500, False),))
    rt.status = replace(rt.status, engine=fold_sample(None, awake, 95.0))
    assert (await control.check_now("t")).overloaded is None


def test_sglangs_decode_counter_appearing_is_a_new_baseline_not_a_restart() -> None:
    """A fresh SGLang has only generation_tokens_total; realtime_tokens_total{mode="decode"}
    appears with its first decode, lower: not a counter going backwards."""
    from exporter.engine.progress import fold_sample

    old = EngineSample(
        "sglang", 1, 0, 0.1, 5000, 5000, progress_name="sglang:generation_tokens_total"
    )
    new = replace(old, progress=40, generated=40, progress_name="sglang:realtime_tokens_total")
    view = fold_sample(fold_sample(None, old, 1.0), new, 2.0)
    assert view.resets == 0 and view.note == ""
    assert fold_sample(view, replace(new, progress=10, generated=10), 3.0).resets == 1


def test_requests_deferred_on_purpose_are_no_stall() -> None:
    """vLLM's waiting includes requests deferred for a KV transfer or a LoRA budget
    (num_requests_waiting_by_reason{reason="deferred"}): frozen with only those is no stall."""

    def deferred(t: float, held: float) -> Step:
        unit = EngineUnit("0", 0, 4, 400, deferred=held)
        sample = EngineSample("vllm", 0, 4, 0.1, 400, 400, engines=(unit,))
        return Step(t, ProbeResult(E, True, 0.01, t, 200, engine=sample))

    base = [*healthy_start(), *(health(t + 0.5) for t in every(5, 60, 5))]
    states, status = run([*base, *(deferred(t, 4) for t in every(5, 60, 5))])
    assert State.DEGRADED not in states and status.state is State.UP
    _, status = run([*base, *(deferred(t, 1) for t in every(5, 60, 5))])  # three really wait
    assert status.state is State.DEGRADED and status.reason == "engine_stalled"
