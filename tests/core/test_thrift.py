"""Real traffic is the heartbeat (exporter/engine/thrift.py): the synthetic chat rests while the
server's own counters prove inference works, and runs whenever they cannot (idle, no view, a
stale or stalled one, a failure being confirmed, a recovery being checked); on a saturated
engine it measures once, then backs off. Table-tested over the pure decision, then the real
scheduler against the simulated vLLM under a steady client load."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.probecost import client_load
from exporter.config import Settings, TargetConfig
from exporter.engine.progress import EnginePolicy, EngineView, fold_sample
from exporter.engine.state import Policy, State, TargetStatus
from exporter.engine.thrift import Sent, Skip, skip_reason
from exporter.probes.results import Check, EngineSample, ProbeResult, Reason
from exporter.simulate import Simulator
from tests.waiting import wait_for

from .live import running_exporter, scrape, value

T0 = 1_764_000_000.0
EP = EnginePolicy(stall_after=20.0, queue_saturated=5.0, kv_saturated=0.8, fresh_for=20.0)
POLICY = Policy(checks=(Check.HEALTH, Check.MODELS, Check.CHAT, Check.ENGINE), engine=EP)
MAX_SKIP = 600.0


def view(running: float, steps: int = 3, moving: bool = True, waiting: float = 0.0) -> EngineView:
    """An engine view from `steps` samples 5 s apart ending at T0 + 30."""
    v: EngineView | None = None
    for i in range(steps):
        progress = 100.0 * (i + 1) if moving else 100.0
        sample = EngineSample("vllm", running, waiting, 0.2, progress, progress)
        v = fold_sample(v, sample, T0 + 30 - 5 * (steps - 1 - i))
    assert v is not None
    return v


def ok(check: Check, t: float = T0) -> ProbeResult:
    return ProbeResult(check, True, 0.1, t, 200)


def failed(check: Check, reason: Reason = Reason.TIMEOUT, t: float = T0) -> ProbeResult:
    return ProbeResult(check, False, 8.0, t, None, reason)


def status(engine: EngineView | None, **kw: object) -> TargetStatus:
    latest = {c: ok(c) for c in (Check.HEALTH, Check.MODELS, Check.CHAT)}
    base = TargetStatus(state=State.UP, since=T0 - 100, latest=latest, engine=engine)
    return replace(base, **kw)  # type: ignore[arg-type]


SENT = Sent(T0, saturated=False)
NOW = T0 + 31


def test_busy_and_advancing_rests() -> None:
    assert skip_reason(status(view(running=3)), POLICY, SENT, MAX_SKIP, NOW) is Skip.TRAFFIC


@pytest.mark.parametrize(
    ("why", "st", "sent", "now"),
    [
        ("idle: nothing running", status(view(running=0)), SENT, NOW),
        ("no engine view", status(None), SENT, NOW),
        ("the view is stale", status(view(running=3)), SENT, NOW + 60),
        ("generation frozen", status(view(running=3, steps=6, moving=False)), SENT, NOW),
        ("counter frozen, not a stall yet", status(view(3, 3, False)), SENT, NOW),
        (
            "the floor: the last chat is max_skip old",
            status(view(running=3)),
            Sent(NOW - MAX_SKIP, False),
            NOW,
        ),
        ("never sent (started, reloaded)", status(view(running=3)), None, NOW),
        (
            "health failing: being confirmed",
            status(
                view(3),
                latest={c: ok(c) for c in (Check.MODELS, Check.CHAT)}
                | {Check.HEALTH: failed(Check.HEALTH)},
            ),
            SENT,
            NOW,
        ),
        (
            "chat failing: being confirmed",
            status(
                view(3),
                latest={c: ok(c) for c in (Check.HEALTH, Check.MODELS)}
                | {Check.CHAT: failed(Check.CHAT)},
                failures={Check.CHAT: 1},
            ),
            SENT,
            NOW,
        ),
        (
            "a recovery being checked",
            status(view(3), recovered_at=T0, fresh=frozenset({Check.HEALTH})),
            SENT,
            NOW,
        ),
        ("degraded", status(view(3), state=State.DEGRADED), SENT, NOW),
        ("starting", status(view(3), state=State.STARTING), SENT, NOW),
        ("recovery grace", status(view(3), grace_until=NOW + 100), SENT, NOW),
        (
            "the view counts our own request",
            status(
                view(3),
                latest={c: ok(c) for c in (Check.HEALTH, Check.MODELS)}
                | {Check.CHAT: ok(Check.CHAT, T0 + 30)},
            ),
            SENT,
            NOW,
        ),
        ("saturated, not measured under it yet", status(view(3, waiting=9)), SENT, NOW),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_chat_runs(why: str, st: TargetStatus, sent: Sent | None, now: float) -> None:
    assert skip_reason(st, POLICY, sent, MAX_SKIP, now) is None, why


def test_a_saturated_engine_is_measured_once_then_backed_off() -> None:
    st = status(view(running=3, waiting=9))
    assert skip_reason(st, POLICY, Sent(T0, saturated=True), MAX_SKIP, NOW) is Skip.SATURATED


def test_a_confirmed_busy_failure_backs_off_an_unconfirmed_one_is_confirmed() -> None:
    latest = {c: ok(c) for c in (Check.HEALTH, Check.MODELS)} | {Check.CHAT: failed(Check.CHAT)}
    busy = view(running=3, waiting=9)
    overloaded = status(busy, state=State.OVERLOADED, latest=latest, failures={Check.CHAT: 3})
    assert skip_reason(overloaded, POLICY, SENT, MAX_SKIP, NOW) is Skip.SATURATED
    confirming = replace(overloaded, failures={Check.CHAT: 2})
    assert skip_reason(confirming, POLICY, SENT, MAX_SKIP, NOW) is None
    drained = replace(overloaded, engine=view(running=3))  # queue gone: the chat runs again
    assert skip_reason(drained, POLICY, SENT, MAX_SKIP, NOW) is None
    wrong = replace(
        overloaded, latest=latest | {Check.CHAT: failed(Check.CHAT, Reason.VALIDATION_FAILED)}
    )
    assert skip_reason(wrong, POLICY, SENT, MAX_SKIP, NOW) is None


# ---- the real scheduler against the simulator under a steady client load ----------------


async def test_real_traffic_replaces_the_chat_and_idle_brings_it_back(
    sim: Simulator, tmp_path: Path
) -> None:
    target = TargetConfig(
        name="qwen",
        url=sim.url,
        checks={"chat": {"interval": 0.4}, "engine": {"interval": 0.2}},
    )
    settings = Settings(targets=[target], default_interval=1.0, history_file=tmp_path / "h.jsonl")
    async with running_exporter(settings) as (exporter, base):
        rt = exporter.monitor.targets["qwen"]

        async def state_is(name: str) -> bool:
            return value(await scrape(base), "llm_target_state", target="qwen", state=name) == 1

        await wait_for(lambda: state_is("up"))
        async with client_load(sim.url, users=3, tokens=200) as done:
            await wait_for(lambda: rt.skipped[(Check.CHAT, "traffic")] >= 1, timeout=30)
            sent = rt.probes[Check.CHAT]
            await wait_for(lambda: rt.skipped[(Check.CHAT, "traffic")] >= 10, timeout=60)
            assert rt.probes[Check.CHAT] == sent  # busy: not one more synthetic chat
            assert done[0] > 0
            text = await scrape(base)
            skipped = value(
                text, "llm_probe_skipped_total", target="qwen", check="chat", reason="traffic"
            )
            assert skipped is not None and skipped >= 10
            assert value(text, "llm_target_state", target="qwen", state="up") == 1
        # idle again: the chat is the heartbeat once more
        await wait_for(lambda: rt.probes[Check.CHAT] >= sent + 3, timeout=60)
        assert rt.status.state is State.UP


def test_a_timeout_is_confirmed_one_probe_at_a_time_on_a_saturated_engine() -> None:
    from exporter.engine.cadence import confirmations

    latest = {c: ok(c) for c in (Check.HEALTH, Check.MODELS)} | {Check.CHAT: failed(Check.CHAT)}
    idle = status(view(running=1), latest=latest, failures={Check.CHAT: 1})
    assert confirmations(idle, Check.CHAT, POLICY, NOW) == 2  # the missing two at once
    saturated = replace(idle, engine=view(running=3, waiting=9))
    assert confirmations(saturated, Check.CHAT, POLICY, NOW) == 1  # not two more in its queue


def test_a_saturated_engine_whose_counters_froze_is_confirmed_at_full_speed() -> None:
    """Not yet a stall (stall_after not reached), but no longer advancing: it may be one
    starting, so its failures are confirmed at once and the chat does not rest."""
    from exporter.engine.cadence import confirmations

    latest = {c: ok(c) for c in (Check.HEALTH, Check.MODELS)} | {Check.CHAT: failed(Check.CHAT)}
    frozen = view(running=3, steps=3, moving=False, waiting=9)
    assert frozen.saturated(EP) and not frozen.stalled(NOW, EP)
    st = status(frozen, latest=latest, failures={Check.CHAT: 1})
    assert confirmations(st, Check.CHAT, POLICY, NOW) == 2
    resting = status(frozen)
    assert skip_reason(resting, POLICY, Sent(T0, saturated=True), MAX_SKIP, NOW) is None
