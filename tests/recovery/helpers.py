"""Shared test helpers: a fake TargetControl, payload builders, a service factory."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from exporter.recovery import RecoveryConfig, RecoveryService, TargetCheck
from exporter.recovery.api import build_routes
from exporter.recovery.collector import RecoveryCollector

HERE = Path(__file__).parent
RECORDER = HERE / "scripts" / "record_call.py"
TOKEN = "s3cret-hook-token-0123456789"
DOWN = TargetCheck(healthy=False, answering=False, state="down", detail="connect_error")
UP = TargetCheck(healthy=True, answering=True, state="up", detail="all checks pass")


class FakeTargets:
    """Implements exporter.recovery.TargetControl; each check_now answers from `checker`."""

    def __init__(
        self,
        names: Sequence[str] = ("vllm",),
        url: str = "http://127.0.0.1:9",
        checker: Callable[[str], TargetCheck] | None = None,
    ) -> None:
        self.names = list(names)
        self.url = url
        self.checker = checker or (lambda name: DOWN)
        self.checks: list[str] = []
        self.graces: list[tuple[str, float, str]] = []
        self.ended: list[str] = []
        self.states: dict[str, str] = {}

    def target_names(self) -> list[str]:
        return self.names

    def has_target(self, name: str) -> bool:
        return name in self.names

    def target_url(self, name: str) -> str:
        return self.url

    def state(self, name: str) -> str:
        return self.states.get(name, "down")

    async def check_now(self, name: str) -> TargetCheck:
        self.checks.append(name)
        return self.checker(name)

    def begin_grace(self, name: str, seconds: float, reason: str) -> None:
        self.graces.append((name, seconds, reason))

    def end_grace(self, name: str) -> None:
        self.ended.append(name)


def recorder_rule(log: Path, name: str = "restart", **match: Any) -> dict[str, Any]:
    """A rule whose command appends its argv and LLMHB_* env to `log` (one JSON line per run)."""
    return {
        "name": name,
        "match": match or {"alertnames": ["LLMTargetDown"]},
        "action": {
            "type": "command",
            "argv": [sys.executable, str(RECORDER), str(log)],
            "timeout": 30,
        },
    }


def fast_rails(**over: Any) -> dict[str, Any]:
    rails = {
        "cooldown": 0,
        "max_attempts": 3,
        "window": "1h",
        "backoff_base": 0,
        "backoff_max": 0,
        "grace": "10m",
        "verify_timeout": 0.5,
        "verify_interval": 0.02,
        "exhausted_check_interval": 0.05,
    }
    rails.update(over)
    return rails


def make_config(tmp_path: Path, **over: Any) -> RecoveryConfig:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    data: dict[str, Any] = {
        "enabled": True,
        "auth": {"token_file": str(token_file)},
        "history_file": str(tmp_path / "history.jsonl"),
        "rules": [recorder_rule(tmp_path / "calls.jsonl")],
        "rails": fast_rails(),
    }
    data.update(over)
    return RecoveryConfig.model_validate(data)


def alert(
    status: str = "firing",
    alertname: str = "LLMTargetDown",
    target: str = "vllm",
    fingerprint: str = "fp0001",
    starts_at: str = "2025-01-01T10:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, "target": target, "severity": "critical", **labels},
        "annotations": {"summary": "target down"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], status: str | None = None, truncated: int = 0) -> dict:
    group_status = status or (
        "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    )
    return {
        "version": "4",
        "groupKey": '{}:{alertname="LLMTargetDown"}',
        "truncatedAlerts": truncated,
        "status": group_status,
        "receiver": "llm-heartbeat-recovery",
        "groupLabels": {"alertname": "LLMTargetDown"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def running(
    config: RecoveryConfig, targets: FakeTargets | Any, **kwargs: Any
) -> AsyncIterator[tuple[RecoveryService, httpx.AsyncClient, CollectorRegistry]]:
    """A started service behind an in-process ASGI client; stopped on exit."""
    registry = CollectorRegistry()
    svc = RecoveryService(config, targets, **kwargs)
    registry.register(RecoveryCollector(svc))
    await svc.start()
    app = Starlette(routes=build_routes(svc))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
            yield svc, client, registry
    finally:
        await svc.stop()


def calls(log: Path) -> list[dict[str, Any]]:
    import json

    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
