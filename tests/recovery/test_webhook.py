"""The HTTP side of the receiver: auth, size caps, bad input, retries and repeats, per-alert status."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from exporter.recovery import RecoveryConfigError, RecoveryService
from exporter.recovery.api import build_routes
from tests.recovery.helpers import (
    AUTH,
    DOWN,
    TOKEN,
    UP,
    FakeTargets,
    alert,
    calls,
    make_config,
    payload,
    running,
)


def hooks(registry: CollectorRegistry, outcome: str) -> float | None:
    return registry.get_sample_value("llm_alertmanager_webhooks_total", {"outcome": outcome})


def attempts(registry: CollectorRegistry, result: str, target: str = "vllm") -> float | None:
    return registry.get_sample_value(
        "llm_recovery_attempts_total", {"target": target, "action": "command", "result": result}
    )


async def test_requires_bearer_token(tmp_path: Path) -> None:
    async with running(make_config(tmp_path), FakeTargets()) as (_svc, client, reg):
        body = payload(alert())
        r = await client.post("/hooks/alertmanager", json=body)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        r = await client.post(
            "/hooks/alertmanager", json=body, headers={"Authorization": "Bearer wrong"}
        )
        assert r.status_code == 401
        r = await client.post(
            "/hooks/alertmanager", json=body, headers={"Authorization": f"Basic {TOKEN}"}
        )
        assert r.status_code == 401
        assert hooks(reg, "unauthorized") == 3
        assert calls(tmp_path / "calls.jsonl") == []
        r = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
        assert r.status_code == 200
        assert hooks(reg, "accepted") == 1


async def test_reset_and_status_need_the_token_too(tmp_path: Path) -> None:
    async with running(make_config(tmp_path), FakeTargets()) as (_, client, _reg):
        assert (await client.post("/api/v1/recovery/vllm/reset")).status_code == 401
        assert (await client.get("/api/v1/recovery")).status_code == 401
        assert (await client.post("/api/v1/recovery/nope/reset", headers=AUTH)).status_code == 404
        r = await client.get("/api/v1/recovery", headers=AUTH)
        assert r.status_code == 200
        assert r.json()["targets"]["vllm"]["exhausted"] is False


def test_actions_without_token_refuse_to_start(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, auth={})
    with pytest.raises(RecoveryConfigError, match="no bearer token"):
        RecoveryService(cfg, FakeTargets(), listen_host="127.0.0.1")
    loop_ok = make_config(tmp_path, auth={"allow_unauthenticated_loopback": True})
    with pytest.raises(RecoveryConfigError, match="not loopback"):
        RecoveryService(loop_ok, FakeTargets(), listen_host="0.0.0.0")
    with pytest.raises(RecoveryConfigError, match="not loopback"):
        RecoveryService(loop_ok, FakeTargets())
    svc = RecoveryService(loop_ok, FakeTargets(), listen_host="::1")
    assert svc.token is None


def test_unreadable_token_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, auth={"token_file": str(tmp_path / "missing")})
    with pytest.raises(RecoveryConfigError, match="cannot read"):
        RecoveryService(cfg, FakeTargets())


async def test_unauthenticated_loopback_receiver_accepts(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, auth={"allow_unauthenticated_loopback": True})
    async with running(cfg, FakeTargets(), listen_host="127.0.0.1") as (svc, client, _):
        r = await client.post("/hooks/alertmanager", json=payload(alert()))
        assert r.status_code == 200
        await svc.drain()
    assert len(calls(tmp_path / "calls.jsonl")) == 1


async def test_disabled_receiver(tmp_path: Path) -> None:
    async with running(make_config(tmp_path, enabled=False), FakeTargets()) as (_, client, reg):
        r = await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
        # 200, so the shipped Alertmanager config does not log an error on every alert
        assert r.status_code == 200 and r.json() == {
            "status": "ignored",
            "reason": "recovery.enabled is false",
        }
        assert hooks(reg, "disabled") == 1
        assert calls(tmp_path / "calls.jsonl") == []  # nothing was acted on


async def test_not_started_is_a_retryable_5xx(tmp_path: Path) -> None:
    from starlette.applications import Starlette

    svc = RecoveryService(make_config(tmp_path), FakeTargets())
    transport = httpx.ASGITransport(app=Starlette(routes=build_routes(svc)))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        r = await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
    assert r.status_code == 503


async def test_body_too_large(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, max_body_bytes=2048)
    async with running(cfg, FakeTargets()) as (_, client, reg):
        big = payload(*[alert(fingerprint=f"fp{i}") for i in range(50)])
        r = await client.post("/hooks/alertmanager", json=big, headers=AUTH)
        assert r.status_code == 413
        assert "2048" in r.json()["error"]

        chunks_sent = 0

        async def stream():  # no Content-Length: the cap must bite while streaming
            nonlocal chunks_sent
            for _ in range(1000):
                chunks_sent += 1
                yield b"x" * 1024

        r = await client.post("/hooks/alertmanager", content=stream(), headers=AUTH)
        assert r.status_code == 413
        assert hooks(reg, "too_large") == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "invalid"),
        (b"", "invalid"),
        (b"[]", "invalid"),
        (b'{"version":"4"}', "alerts"),
        (b'{"alerts":[{"status":"burning","startsAt":"2025-01-01T00:00:00Z"}]}', "status"),
        (b'{"alerts":[{"status":"firing","startsAt":"yesterday"}]}', "startsAt"),
        (
            b'{"alerts":[{"status":"firing","startsAt":"2025-01-01T00:00:00Z","labels":{"a":1}}]}',
            "labels",
        ),
        (b"[" * 100000, "invalid"),
        (b"\xff\xfe\x00garbage", "invalid"),
    ],
)
async def test_malformed_bodies_are_4xx(tmp_path: Path, body: bytes, fragment: str) -> None:
    async with running(make_config(tmp_path), FakeTargets()) as (_, client, reg):
        r = await client.post("/hooks/alertmanager", content=body, headers=AUTH)
        assert r.status_code == 400
        assert fragment in r.json()["error"]
        assert hooks(reg, "invalid") == 1


async def test_same_alert_1000_times_runs_one_action(tmp_path: Path) -> None:
    targets = FakeTargets()
    targets.checker = lambda name: UP if targets.graces else DOWN
    async with running(make_config(tmp_path), targets) as (svc, client, reg):
        body = payload(alert())
        for _ in range(1000):
            r = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
            assert r.status_code == 200
        await svc.drain()
        # and again after the action finished (Alertmanager's repeat_interval)
        r = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
        assert r.json()["duplicate"] == 1
        await svc.drain()
    assert len(calls(tmp_path / "calls.jsonl")) == 1
    assert hooks(reg, "accepted") == 1
    assert hooks(reg, "duplicate") == 1000
    assert attempts(reg, "success") == 1


async def test_resolved_alerts_never_act(tmp_path: Path) -> None:
    async with running(make_config(tmp_path), FakeTargets()) as (svc, client, reg):
        r = await client.post(
            "/hooks/alertmanager", json=payload(alert(status="resolved")), headers=AUTH
        )
        assert r.json()["resolved"] == 1
        await svc.drain()
    assert calls(tmp_path / "calls.jsonl") == []
    assert attempts(reg, "failed") == 0


async def test_group_resolved_but_alert_firing_acts(tmp_path: Path) -> None:
    # After max_alerts truncation the group can say resolved while an alert in it fires.
    body = payload(
        alert(status="resolved", fingerprint="aaa"),
        alert(status="firing", fingerprint="bbb"),
        status="resolved",
        truncated=7,
    )
    async with running(make_config(tmp_path), FakeTargets()) as (svc, client, _):
        r = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
        assert r.json()["accepted"] == 1
        await svc.drain()
    assert len(calls(tmp_path / "calls.jsonl")) == 1


async def test_unknown_target_and_unmatched_alerts_are_ignored(tmp_path: Path) -> None:
    async with running(make_config(tmp_path), FakeTargets()) as (svc, client, _):
        body = payload(
            alert(target="not-configured", fingerprint="1"),
            alert(alertname="SomethingElse", fingerprint="2"),
            {**alert(fingerprint="3"), "labels": {"alertname": "LLMTargetDown"}},
        )
        r = await client.post("/hooks/alertmanager", json=body, headers=AUTH)
        assert r.status_code == 200
        assert r.json()["unmatched"] == 3
        await svc.drain()
    assert calls(tmp_path / "calls.jsonl") == []


async def test_answers_before_the_action_finishes(tmp_path: Path) -> None:
    import sys

    cfg = make_config(
        tmp_path,
        rules=[
            {
                "name": "slow",
                "action": {
                    "type": "command",
                    "argv": [sys.executable, "-c", "import time; time.sleep(30)"],
                },
            }
        ],
    )
    async with running(cfg, FakeTargets()) as (svc, client, reg):
        r = await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
        assert r.status_code == 200
        labels = {"target": "vllm"}
        for _ in range(500):
            if reg.get_sample_value("llm_recovery_in_progress", labels) == 1:
                break
            await _sleep()
        assert reg.get_sample_value("llm_recovery_in_progress", labels) == 1
    # stop() cancelled the action and killed its process group; nothing left running
    assert not svc._tasks


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.01)


async def test_metrics_are_preinitialised(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    async with running(cfg, FakeTargets(names=("vllm", "llama"))) as (_, _client, reg):
        for target in ("vllm", "llama"):
            assert reg.get_sample_value("llm_recovery_in_progress", {"target": target}) == 0
            assert reg.get_sample_value("llm_recovery_exhausted", {"target": target}) == 0
            assert attempts(reg, "skipped_cooldown", target) == 0
            assert attempts(reg, "dry_run", target) == 0
        for outcome in (
            "accepted",
            "duplicate",
            "unauthorized",
            "invalid",
            "too_large",
            "disabled",
        ):
            assert hooks(reg, outcome) == 0
        assert (
            reg.get_sample_value("llm_recovery_last_attempt_timestamp_seconds", {"target": "vllm"})
            is None
        )


async def test_json_summary_is_plain(tmp_path: Path) -> None:
    async with running(make_config(tmp_path), FakeTargets()) as (svc, client, _):
        r = await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
        assert r.headers["content-type"] == "application/json"
        assert json.loads(r.text) == {
            "status": "ok",
            "accepted": 1,
            "duplicate": 0,
            "resolved": 0,
            "unmatched": 0,
        }
        await svc.drain()


async def test_no_per_target_series_while_recovery_is_off(tmp_path: Path) -> None:
    """With recovery disabled nothing can be in progress or exhausted: no always-zero series
    per monitored target (two per target were a tenth of /metrics at 5,000 targets)."""
    cfg = make_config(tmp_path, enabled=False)
    async with running(cfg, FakeTargets(names=("vllm", "llama"))) as (_, _client, reg):
        families = {m.name: m for m in reg.collect()}
        assert "llm_recovery_in_progress" in families  # the family stays, documented
        for name in ("llm_recovery_in_progress", "llm_recovery_exhausted", "llm_recovery_attempts"):
            assert families[name].samples == [], name
