"""The shipped Prometheus and Alertmanager configs, rewritten for a stack on loopback.

Pure functions from the shipped YAML (as dicts) to the YAML the test processes load. Only
addresses, ports, file paths and timings change; routes, receivers, inhibitions and the rule
files themselves stay as shipped, so the tests prove the shipped content.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = [
    "EXPORTER_JOB",
    "RECOVERY_HOOK_PATH",
    "REPO",
    "AlertmanagerAddresses",
    "RouteTimings",
    "alertmanager_config",
    "fmt_seconds",
    "load_yaml",
    "parse_seconds",
    "prometheus_config",
    "short_timings",
]

REPO = Path(__file__).resolve().parents[2]
EXPORTER_JOB = "llm-heartbeat"
RECOVERY_HOOK_PATH = "/hooks/alertmanager"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level is not a mapping")
    return data


def parse_seconds(text: str | int | float) -> float:
    """A Prometheus duration ("1m30s", "500ms", "0s") in seconds."""
    if isinstance(text, int | float):
        return float(text)
    total, number, i = 0.0, "", 0
    s = text.strip()
    while i < len(s):
        ch = s[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if s.startswith("ms", i) else ch
        if unit not in _UNITS or not number:
            raise ValueError(f"not a duration: {text!r}")
        total += float(number) * _UNITS[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"duration without a unit: {text!r}")
    return total


def fmt_seconds(seconds: float) -> str:
    """Seconds as a Prometheus duration, in whole milliseconds when needed."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


# ----------------------------------------------------------------------------- Prometheus


def prometheus_config(
    shipped: dict[str, Any],
    *,
    shipped_dir: Path,
    exporter: str,
    alertmanager: str,
    interval: float | None = None,
) -> dict[str, Any]:
    """The shipped profile with its rule files made absolute, Alertmanager and the exporter at
    the given host:port, and only the exporter's scrape job (the rules expect its job name).

    `interval` (seconds) replaces every scrape and evaluation interval (tests); None keeps the
    profile's own (benchmarks measure the profile as shipped).
    """
    cfg = copy.deepcopy(shipped)
    cfg["rule_files"] = [str((shipped_dir / p).resolve()) for p in cfg.get("rule_files", [])]
    if not cfg["rule_files"]:
        raise ValueError("the shipped Prometheus config names no rule files")
    managers = cfg.get("alerting", {}).get("alertmanagers") or [{}]
    managers = [copy.deepcopy(managers[0])]
    managers[0]["static_configs"] = [{"targets": [alertmanager]}]
    cfg.setdefault("alerting", {})["alertmanagers"] = managers
    jobs = [j for j in cfg.get("scrape_configs", []) if j.get("job_name") == EXPORTER_JOB]
    if len(jobs) != 1:
        raise ValueError(f"the shipped Prometheus config has no single {EXPORTER_JOB!r} job")
    job = jobs[0]
    job["static_configs"] = [{"targets": [exporter]}]
    if interval is not None:
        text = fmt_seconds(interval)
        glob = cfg.setdefault("global", {})
        glob.update(scrape_interval=text, scrape_timeout=text, evaluation_interval=text)
        job["scrape_interval"] = text
        job["scrape_timeout"] = text
    cfg["scrape_configs"] = [job]
    return cfg


# ----------------------------------------------------------------------------- Alertmanager


@dataclass(frozen=True)
class AlertmanagerAddresses:
    """Where the test's receivers live."""

    recovery_base: str
    """Replaces scheme://host:port of the recovery webhook URL (its path is kept)."""
    humans_webhook: str
    """Every other webhook or chat URL (Slack-compatible) goes to this recorder."""
    smarthost: str
    token_file: Path
    """The recovery receiver's bearer token, for `credentials_file`."""
    chat_url_file: Path
    """A file holding `humans_webhook`, for `api_url_file`."""


RouteTimings = Callable[[str, float], float]
"""(field name, shipped seconds) -> test seconds, for group_wait/group_interval/repeat_interval."""


def short_timings(field: str, seconds: float) -> float:
    """Seconds instead of minutes. Every group_wait becomes zero: with the fast rules the
    receiver's restart resolves LLMTargetDown about one evaluation (1 s) after it fired, and
    Alertmanager never tells anyone about an alert that is resolved by its group's first
    flush, so a 1 s group_wait would race the resolution for the humans' mail."""
    if field == "group_wait":
        return 0.0
    if field == "group_interval":
        return 1.0
    return 2.0  # repeat_interval: the receiver sees repeats, humans get reminders


def _rewrite_url(url: str, addr: AlertmanagerAddresses) -> str:
    parts = urlsplit(url)
    if parts.path.rstrip("/") == RECOVERY_HOOK_PATH:
        return addr.recovery_base.rstrip("/") + parts.path
    return addr.humans_webhook


def _rewrite_http_config(http: dict[str, Any], addr: AlertmanagerAddresses, recovery: bool) -> None:
    auth = http.get("authorization")
    if isinstance(auth, dict) and "credentials_file" in auth:
        if recovery:
            auth["credentials_file"] = str(addr.token_file)
        else:
            http.pop("authorization")


def _rewrite_receiver(rcv: dict[str, Any], addr: AlertmanagerAddresses) -> None:
    for hook in rcv.get("webhook_configs", []) or []:
        if "url_file" in hook:
            hook.pop("url_file")
            hook["url"] = addr.humans_webhook
        hook["url"] = _rewrite_url(hook["url"], addr)
        recovery = hook["url"].endswith(RECOVERY_HOOK_PATH)
        _rewrite_http_config(hook.setdefault("http_config", {}), addr, recovery)
    for chat in rcv.get("slack_configs", []) or []:
        if "api_url_file" in chat:
            chat["api_url_file"] = str(addr.chat_url_file)
        else:
            chat["api_url"] = addr.humans_webhook
        if "http_config" in chat:
            _rewrite_http_config(chat["http_config"], addr, False)
    for mail in rcv.get("email_configs", []) or []:
        if "smarthost" in mail:
            mail["smarthost"] = addr.smarthost
        mail["require_tls"] = False
        for key in ("auth_username", "auth_password", "auth_password_file", "auth_identity"):
            mail.pop(key, None)


def _rewrite_route(route: dict[str, Any], timings: RouteTimings | None) -> None:
    if timings is not None:
        for name in ("group_wait", "group_interval", "repeat_interval"):
            if name in route:
                route[name] = fmt_seconds(timings(name, parse_seconds(route[name])))
    for child in route.get("routes", []) or []:
        _rewrite_route(child, timings)


def alertmanager_config(
    shipped: dict[str, Any], addr: AlertmanagerAddresses, timings: RouteTimings | None = None
) -> dict[str, Any]:
    """The shipped config with receivers on loopback, a plain SMTP sink and, optionally, test
    timings on every route (the root route gets all three so children inherit short ones)."""
    cfg = copy.deepcopy(shipped)
    glob = cfg.setdefault("global", {})
    glob["smtp_smarthost"] = addr.smarthost
    glob["smtp_require_tls"] = False
    for key in ("smtp_auth_username", "smtp_auth_password", "smtp_auth_password_file"):
        glob.pop(key, None)
    for key in ("slack_api_url", "slack_api_url_file"):
        if key in glob:
            glob.pop(key)
            glob["slack_api_url"] = addr.humans_webhook
    for rcv in cfg.get("receivers", []):
        _rewrite_receiver(rcv, addr)
    root = cfg["route"]
    if timings is not None:
        root.setdefault("group_wait", "30s")
        root.setdefault("group_interval", "5m")
        root.setdefault("repeat_interval", "4h")
    _rewrite_route(root, timings)
    return cfg
