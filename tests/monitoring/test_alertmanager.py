"""Alertmanager config: amtool check-config, routing cases, recovery route and inhibitions."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.monitoring.sources import ALERTMANAGER_DIR
from tests.monitoring.tools import require_tool, run

CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
CASES: list[dict[str, Any]] = yaml.safe_load(
    (ALERTMANAGER_DIR / "tests" / "routes.yml").read_text(encoding="utf-8")
)


def _config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


def test_amtool_check_config() -> None:
    amtool = require_tool("amtool")
    result = run([amtool, "check-config", str(CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_amtool_routes(case: dict[str, Any]) -> None:
    amtool = require_tool("amtool")
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    expected = ",".join(case["receivers"])
    result = run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={expected}",
            *labels,
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def test_amtool_routes_detects_a_wrong_expectation() -> None:
    amtool = require_tool("amtool")
    result = run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            "--verify.receivers=humans",
            "alertname=LLMTargetDown",
            "severity=critical",
            "target=qwen3-4b",
        ]
    )
    assert result.returncode != 0


def test_recovery_route_continues_to_humans_with_a_file_token() -> None:
    config = _config()
    first = config["route"]["routes"][0]
    assert first["receiver"] == "recovery-webhook"
    assert first["continue"] is True
    assert config["route"]["group_by"] == ["target"]
    receivers = {r["name"]: r for r in config["receivers"]}
    hook = receivers["recovery-webhook"]["webhook_configs"][0]
    assert hook["url"].endswith(":8001/hooks/alertmanager")
    assert hook["send_resolved"] is True
    auth = hook["http_config"]["authorization"]
    assert auth["type"] == "Bearer" and auth["credentials_file"].startswith("/")
    assert "credentials" not in auth
    humans = receivers["humans"]
    assert humans["email_configs"] and humans["slack_configs"]
    assert "api_url" not in humans["slack_configs"][0]
    assert config["global"]["smtp_smarthost"]


def test_down_inhibits_degraded_latency_and_ttft_of_the_same_target() -> None:
    rules = _config()["inhibit_rules"]
    down = [r for r in rules if r["source_matchers"] == ['alertname = "LLMTargetDown"']]
    assert len(down) == 1
    assert down[0]["equal"] == ["target"]
    target = down[0]["target_matchers"][0]
    for alert in ("LLMInferenceDegraded", "LLMLatencyHigh", "LLMTimeToFirstTokenHigh"):
        assert alert in target


def test_overloaded_is_inhibited_by_down_and_degraded_and_inhibits_latency() -> None:
    rules = _config()["inhibit_rules"]

    def targets_of(source: str) -> str:
        found = [r for r in rules if r["source_matchers"] == [f'alertname = "{source}"']]
        assert len(found) == 1, source
        assert found[0]["equal"] == ["target"]
        return str(found[0]["target_matchers"][0])

    assert "LLMTargetOverloaded" in targets_of("LLMTargetDown")
    assert "LLMTargetOverloaded" in targets_of("LLMInferenceDegraded")
    overloaded = targets_of("LLMTargetOverloaded")
    assert "LLMLatencyHigh" in overloaded and "LLMTimeToFirstTokenHigh" in overloaded
    assert "LLMInferenceDegraded" not in overloaded  # never hides a broken server


def test_the_recovery_route_never_matches_overloaded() -> None:
    first = _config()["route"]["routes"][0]
    assert first["receiver"] == "recovery-webhook"
    regex = next(m for m in first["matchers"] if m.startswith("alertname"))
    assert "LLMTargetOverloaded" not in regex and "LLMTargetRateLimited" not in regex


HOST = ALERTMANAGER_DIR / "alertmanager-host.yml"


def test_host_variant_checks_and_differs_only_in_addresses_and_secret_files() -> None:
    """The shipped config works only inside compose (llm-heartbeat:8001, mailpit:1025,
    /etc/alertmanager/secrets); the host variant (issue 22) has the same routes, timings and
    inhibitions, and addresses and files a host install has."""
    amtool = require_tool("amtool")
    result = run([amtool, "check-config", str(HOST)])
    assert result.returncode == 0, result.stdout + result.stderr
    host, compose = yaml.safe_load(HOST.read_text(encoding="utf-8")), _config()
    assert host["route"] == compose["route"] and host["inhibit_rules"] == compose["inhibit_rules"]
    text = HOST.read_text(encoding="utf-8")
    body = text[text.index("global:") :]
    for compose_only in ("mailpit", "llm-heartbeat:8001", "/etc/alertmanager/secrets"):
        assert compose_only not in body
    hook = {r["name"]: r for r in host["receivers"]}["recovery-webhook"]["webhook_configs"][0]
    assert hook["url"] == "http://127.0.0.1:8001/hooks/alertmanager"
    assert hook["http_config"]["authorization"]["credentials_file"].startswith("/etc/prometheus/")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_host_variant_routes_like_the_compose_config(case: dict[str, Any]) -> None:
    amtool = require_tool("amtool")
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    expected = ",".join(case["receivers"])
    cmd = [amtool, "config", "routes", "test", f"--config.file={HOST}",
           f"--verify.receivers={expected}", *labels]  # fmt: skip
    result = run(cmd)
    assert result.returncode == 0, result.stdout + result.stderr
