"""The `recovery:` config section and the shared Duration type."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from exporter.config.durations import Duration, parse_duration
from exporter.config.recovery import RecoveryConfig


def cmd_rule(**over: object) -> dict:
    return {"name": "r", "action": {"type": "command", "argv": ["/bin/true"], **over}}


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (5, 5.0),
        (0.5, 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("2", 2.0),
        (" 10s ", 10.0),
    ],
)
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", ["", "5 minutes", "m5", "-1", True, None, [1], "1h-5m", "inf"])
def test_bad_durations(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(raw)


def test_duration_in_a_model() -> None:
    class M(BaseModel):
        d: Duration

    assert M(d="2m").d == 120.0
    with pytest.raises(ValidationError):
        M(d="soon")


def test_defaults_are_safe() -> None:
    cfg = RecoveryConfig()
    assert cfg.enabled is False
    assert cfg.rules == []
    assert cfg.rails.max_attempts >= 1


def test_full_example_parses() -> None:
    cfg = RecoveryConfig.model_validate(
        {
            "enabled": True,
            "dry_run": True,
            "auth": {"token_env": "LLMHB_HOOK_TOKEN"},
            "history_file": "/var/lib/llm-heartbeat/recovery.jsonl",
            "rails": {
                "cooldown": "5m",
                "window": "1h",
                "grace": "10m",
                "overload": {"queue_threshold": 50},
            },
            "rules": [
                cmd_rule(timeout="2m"),
                {"name": "s", "action": {"type": "systemd", "unit": "vllm@qwen.service"}},
                {"name": "d", "action": {"type": "docker", "container": "vllm"}},
                {
                    "name": "k",
                    "match": {"targets": ["a"]},
                    "action": {"type": "kubernetes", "deployment": "vllm", "namespace": "llm"},
                },
                {
                    "name": "h",
                    "action": {
                        "type": "http",
                        "url": "https://orch/restart",
                        "header_files": {"Authorization": "/run/tok"},
                    },
                },
            ],
            "notifications": {
                "email": [
                    {
                        "name": "mail",
                        "host": "smtp.example.org",
                        "port": 465,
                        "security": "ssl",
                        "username": "u",
                        "password_file": "/run/pw",
                        "from": "hb@example.org",
                        "to": ["ops@example.org"],
                    }
                ],
                "webhooks": [
                    {"name": "slack", "url": "https://hooks.slack.com/x", "format": "slack"}
                ],
            },
        }
    )
    assert cfg.rails.cooldown == 300
    assert cfg.rules[0].action.timeout == 120
    assert [r.action.type for r in cfg.rules] == [
        "command",
        "systemd",
        "docker",
        "kubernetes",
        "http",
    ]
    assert cfg.unknown_targets({"b"}) == ["a"]
    assert cfg.unknown_targets({"a"}) == []


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"bogus": 1}, "Extra inputs"),
        ({"rails": {"cooldwn": "5m"}}, "Extra inputs"),
        ({"rules": [cmd_rule(shell=True)]}, "Extra inputs"),
        ({"rules": [{"name": "r", "action": {"type": "teleport"}}]}, "does not match"),
        ({"rules": [cmd_rule(argv=[])]}, "at least 1"),
        ({"rules": [cmd_rule(env={"LLMHB_TARGET": "x"})]}, "reserved"),
        ({"rules": [cmd_rule(env={"BAD NAME": "x"})]}, "invalid environment"),
        ({"rules": [cmd_rule(), cmd_rule()]}, "unique"),
        ({"rules": [{"name": "s", "action": {"type": "systemd", "unit": "--now"}}]}, "unit"),
        ({"rules": [{"name": "s", "action": {"type": "systemd", "unit": "a;b"}}]}, "unit"),
        (
            {"rules": [{"name": "d", "action": {"type": "docker", "container": "../x"}}]},
            "container",
        ),
        (
            {"rules": [{"name": "k", "action": {"type": "kubernetes", "deployment": "Bad_Name"}}]},
            "Kubernetes",
        ),
        ({"rules": [{"name": "h", "action": {"type": "http", "url": "file:///etc"}}]}, "http"),
        ({"auth": {"token_file": "/a", "token_env": "B"}}, "either"),
        ({"rails": {"cooldown": "later"}}, "invalid duration"),
        (
            {
                "notifications": {
                    "webhooks": [{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]
                }
            },
            "unique",
        ),
        (
            {
                "notifications": {
                    "email": [
                        {
                            "name": "m",
                            "host": "h",
                            "from": "a@b",
                            "to": ["c@d"],
                            "password_env": "PW",
                        }
                    ]
                }
            },
            "username",
        ),
    ],
)
def test_invalid_configs(data: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        RecoveryConfig.model_validate(data)
    assert fragment in str(info.value)
