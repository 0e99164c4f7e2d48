"""The rails around an action: re-probe first, never restart a busy or loading server,
cooldown, one action per target, exhaustion and reset, verification with a grace period."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.recovery import TargetCheck
from tests.recovery.helpers import (
    AUTH,
    DOWN,
    UP,
    FakeTargets,
    alert,
    calls,
    fast_rails,
    make_config,
    payload,
    recorder_rule,
    running,
)
from tests.recovery.servers import stub_server
from tests.waiting import wait_for


def result_count(reg: CollectorRegistry, result: str, target: str = "vllm") -> float | None:
    return reg.get_sample_value(
        "llm_recovery_attempts_total", {"target": target, "action": "command", "result": result}
    )


async def fire(client: Any, **kw: Any) -> None:
    r = await client.post("/hooks/alertmanager", json=payload(alert(**kw)), headers=AUTH)
    assert r.status_code == 200, r.text


async def test_stale_alert_for_a_healthy_target_is_skipped(tmp_path: Path) -> None:
    targets = FakeTargets(checker=lambda n: UP)
    async with running(make_config(tmp_path), targets) as (svc, client, reg):
        await fire(client)
        await svc.drain()
        assert result_count(reg, "skipped_healthy") == 1
        assert svc.recent[-1]["reason"].startswith("target answers again")
    assert calls(tmp_path / "calls.jsonl") == []


async def test_a_loading_server_is_not_restarted(tmp_path: Path) -> None:
    starting = TargetCheck(healthy=False, answering=False, state="starting", detail="loading")
    async with running(make_config(tmp_path), FakeTargets(checker=lambda n: starting)) as (
        svc,
        client,
        reg,
    ):
        await fire(client)
        await svc.drain()
        assert result_count(reg, "skipped_starting") == 1
    assert calls(tmp_path / "calls.jsonl") == []


async def test_the_live_engine_view_says_overloaded_not_dead(tmp_path: Path) -> None:
    busy = TargetCheck(
        healthy=False,
        answering=True,
        state="overloaded",
        detail="chat timeout",
        overloaded="engine busy, not broken: 40 requests waiting",
        engine_waiting=40,
    )
    async with running(make_config(tmp_path), FakeTargets(checker=lambda n: busy)) as (
        svc,
        client,
        reg,
    ):
        await fire(client)
        await svc.drain()
        assert result_count(reg, "skipped_overloaded") == 1
        assert "40 requests waiting" in svc.recent[-1]["reason"]
    assert calls(tmp_path / "calls.jsonl") == []


async def test_a_queue_over_the_rails_threshold_is_not_restarted(tmp_path: Path) -> None:
    hung = TargetCheck(
        healthy=False, answering=True, state="degraded", detail="chat timeout", engine_waiting=100
    )
    cfg = make_config(tmp_path, rails=fast_rails(overload={"queue_threshold": 99}))
    async with running(cfg, FakeTargets(checker=lambda n: hung)) as (svc, client, reg):
        await fire(client)
        await svc.drain()
        assert result_count(reg, "skipped_overloaded") == 1
        assert "100 requests waiting > 99" in svc.recent[-1]["reason"]
    assert calls(tmp_path / "calls.jsonl") == []


@pytest.mark.parametrize("waiting", [3.0, None])  # a short queue, or no engine view at all
async def test_a_hung_server_that_is_not_busy_restarts(
    tmp_path: Path, waiting: float | None
) -> None:
    hung = TargetCheck(
        healthy=False, answering=True, state="degraded", detail="engine_stalled",
        engine_waiting=waiting,
    )  # fmt: skip
    async with running(make_config(tmp_path), FakeTargets(checker=lambda n: hung)) as (
        svc,
        client,
        reg,
    ):
        await fire(client)
        await svc.drain()
        assert result_count(reg, "failed") == 1  # acted, then never came back up
    assert len(calls(tmp_path / "calls.jsonl")) == 1


async def test_slow_but_answering_is_overloaded(tmp_path: Path) -> None:
    slow = TargetCheck(healthy=False, answering=True, state="degraded", chat_seconds=45.0)
    cfg = make_config(tmp_path, rails=fast_rails(overload={"slow_chat_seconds": "20s"}))
    async with running(cfg, FakeTargets(checker=lambda n: slow)) as (svc, client, reg):
        await fire(client)
        await svc.drain()
        assert result_count(reg, "skipped_overloaded") == 1
        assert "answers slowly" in svc.recent[-1]["reason"]


async def test_dry_run_counts_and_does_nothing(tmp_path: Path) -> None:
    targets = FakeTargets()
    async with running(make_config(tmp_path, dry_run=True), targets) as (svc, client, reg):
        await fire(client)
        await fire(client)  # a repeat of the same episode
        await svc.drain()
        assert result_count(reg, "dry_run") == 1
        assert "would run command" in svc.recent[-1]["reason"]
    assert calls(tmp_path / "calls.jsonl") == []
    assert targets.graces == []


async def test_verification_uses_a_grace_period(tmp_path: Path) -> None:
    targets = FakeTargets()
    targets.checker = lambda n: UP if targets.graces else DOWN
    cfg = make_config(tmp_path, rails=fast_rails(grace="7m"))
    async with running(cfg, targets) as (svc, client, reg):
        await fire(client)
        await svc.drain()
        assert result_count(reg, "success") == 1
        assert reg.get_sample_value("llm_recovery_in_progress", {"target": "vllm"}) == 0
    assert targets.graces == [("vllm", 420.0, "recovery rule restart")]
    assert targets.ended == ["vllm"]
    assert len(targets.checks) >= 2  # pre-check, then verification


async def test_a_failing_action_is_failed_without_grace(tmp_path: Path) -> None:
    rule = {
        "name": "broken",
        "action": {"type": "command", "argv": [sys.executable, "-c", "raise SystemExit(3)"]},
    }
    targets = FakeTargets()
    async with running(make_config(tmp_path, rules=[rule]), targets) as (svc, client, reg):
        await fire(client)
        await svc.drain()
        assert result_count(reg, "failed") == 1
        assert "exit status 3" in svc.recent[-1]["reason"]
    assert targets.graces == []


async def test_one_action_per_target_at_a_time(tmp_path: Path) -> None:
    release = asyncio.Event()
    targets = FakeTargets()

    async def slow_check(name: str) -> TargetCheck:
        targets.checks.append(name)
        if len(targets.checks) == 1:
            await release.wait()
        return DOWN

    targets.check_now = slow_check  # type: ignore[method-assign]
    async with running(make_config(tmp_path), targets) as (svc, client, reg):
        await fire(client, fingerprint="first")
        await wait_for(lambda: targets.checks, interval=0.01)
        await fire(client, fingerprint="second", alertname="LLMTargetDown")
        await wait_for(lambda: result_count(reg, "skipped_in_progress") == 1, interval=0.01)
        release.set()
        await svc.drain()
        assert result_count(reg, "failed") == 1
    assert len(calls(tmp_path / "calls.jsonl")) == 1


async def test_cooldown_between_episodes(tmp_path: Path) -> None:
    targets = FakeTargets()
    targets.checker = lambda n: UP if targets.graces else DOWN
    cfg = make_config(tmp_path, rails=fast_rails(cooldown="10m"))
    async with running(cfg, targets) as (svc, client, reg):
        await fire(client, fingerprint="a")
        await svc.drain()
        targets.graces.clear()
        await fire(client, fingerprint="b")
        await svc.drain()
        assert result_count(reg, "success") == 1
        assert result_count(reg, "skipped_cooldown") == 1
        status = (await client.get("/api/v1/recovery", headers=AUTH)).json()
        assert status["targets"]["vllm"]["next_allowed_at"] is not None


async def test_exhaustion_then_operator_reset(tmp_path: Path) -> None:
    hook_log: list[dict] = []

    def sink(seen: Any) -> web.Response:
        import json

        hook_log.append(json.loads(seen.body))
        return web.Response(status=200)

    async with stub_server(sink) as stub:
        cfg = make_config(
            tmp_path,
            rails=fast_rails(max_attempts=2, verify_timeout=0.05, verify_interval=0.01),
            notifications={
                "webhooks": [{"name": "ops", "url": stub.url + "/hook"}],
                "retry_delay": 0,
            },
        )
        targets = FakeTargets()  # always down
        async with running(cfg, targets) as (svc, client, reg):
            await fire(client)
            await svc.drain()
            await fire(client)  # still firing, same episode: looked at again after a failure
            await svc.drain()
            assert result_count(reg, "failed") == 2
            assert reg.get_sample_value("llm_recovery_exhausted", {"target": "vllm"}) == 1
            await fire(client)
            await svc.drain()
            assert result_count(reg, "skipped_exhausted") == 1
            assert len(calls(tmp_path / "calls.jsonl")) == 2

            events = [h["event"] for h in hook_log]
            assert events.count("exhausted") == 1
            exhausted = next(h for h in hook_log if h["event"] == "exhausted")
            assert "manual intervention required" in exhausted["message"]

            r = await client.post("/api/v1/recovery/vllm/reset", headers=AUTH)
            assert r.json() == {"target": "vllm", "reset": True}
            assert reg.get_sample_value("llm_recovery_exhausted", {"target": "vllm"}) == 0
            await fire(client)
            await svc.drain()
            assert len(calls(tmp_path / "calls.jsonl")) == 3


async def test_exhausted_clears_when_the_target_is_up_again(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path, rails=fast_rails(max_attempts=1, verify_timeout=0.05, verify_interval=0.01)
    )
    targets = FakeTargets()
    async with running(cfg, targets) as (svc, client, reg):
        await fire(client)
        await svc.drain()
        assert reg.get_sample_value("llm_recovery_exhausted", {"target": "vllm"}) == 1
        targets.states["vllm"] = "up"  # someone fixed it
        for _ in range(500):
            if reg.get_sample_value("llm_recovery_exhausted", {"target": "vllm"}) == 0:
                break
            await asyncio.sleep(0.01)
        assert reg.get_sample_value("llm_recovery_exhausted", {"target": "vllm"}) == 0
        targets.states["vllm"] = "down"
        await fire(client, fingerprint="next-episode")
        await svc.drain()
    assert len(calls(tmp_path / "calls.jsonl")) == 2


async def test_rules_pick_the_action_by_alert_and_target(tmp_path: Path) -> None:
    a_log, b_log = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rules = [
        recorder_rule(a_log, name="for-a", targets=["a"]),
        recorder_rule(
            b_log,
            name="for-b-critical",
            alertnames=["LLMTargetDown"],
            labels={"severity": "critical", "target": "b"},
        ),
    ]
    targets = FakeTargets(names=("a", "b"))
    async with running(make_config(tmp_path, rules=rules), targets) as (svc, client, _):
        await fire(client, target="a", fingerprint="1")
        await fire(client, target="b", fingerprint="2", severity="warning")  # no rule matches
        await fire(client, target="b", fingerprint="3")
        await svc.drain()
    assert [c["env"]["LLMHB_TARGET"] for c in calls(a_log)] == ["a"]
    assert [c["env"]["LLMHB_FINGERPRINT"] for c in calls(b_log)] == ["3"]
