"""The user docs name only things that exist: every alert name is an alert the rules define,
every `llm_*` metric is one the exporter defines, and every HOST:PORT uses a port the project
really listens on or ships in its configs (a copied example must work; issue 17 item 5)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from exporter.config import DEFAULT_MODEL_URL, Settings
from exporter.simulate.cli import ADMIN_PORT_OFFSET
from tests.monitoring.sources import REPO, alert_rules

_SKIP = {".venv", "tests", "build", "node_modules", ".git"}
_ALERT = re.compile(r"\bLLM[A-Z][a-z][A-Za-z]+\b")
# a metric, not part of a recording rule's name (`level:llm_metric:op`) or of a path
_METRIC = re.compile(r"(?<![\w:/.-])llm_[a-z0-9_]+\*?(?![\w:])")
_HOSTPORT = re.compile(
    r"(?:(?<=[\s`(\"'/])|^)(?:[A-Za-z0-9][\w.-]*|\[[0-9a-f:]+\])?:(\d{4,5})\b", re.M
)
_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created", "_info")


def docs() -> list[Path]:
    found = [p for p in REPO.rglob("*.md") if not _SKIP & set(p.relative_to(REPO).parts)]
    assert any(p.name == "README.md" for p in found) and len(found) >= 5
    return sorted(found)


def _mentions(pattern: re.Pattern[str], group: int = 0) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in docs():
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            out.setdefault(m.group(group), set()).add(str(path.relative_to(REPO)))
    return out


def defined_metrics() -> set[str]:
    """Names the exporter's code gives its metric families (string literals in exporter/)."""
    names: set[str] = set()
    for path in (REPO / "exporter").rglob("*.py"):
        names |= set(re.findall(r"[\"'](llm_[a-z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    return names


def known_ports() -> set[int]:
    """The exporter's default port, vLLM's (the default target), the simulator's admin API,
    and every port the shipped compose, Prometheus and Alertmanager configs use."""
    ports = {
        Settings().listen_port,
        urlsplit(DEFAULT_MODEL_URL).port or 80,
        (urlsplit(DEFAULT_MODEL_URL).port or 80) + ADMIN_PORT_OFFSET,
    }
    shipped = [REPO / "docker-compose.yml", *(REPO / "prometheus").glob("*.yml")]
    shipped.append(REPO / "alertmanager" / "alertmanager.yml")
    for path in shipped:
        text = yaml.safe_dump(yaml.safe_load(path.read_text(encoding="utf-8")))
        ports |= {int(p) for p in re.findall(r"[\w\]]:(\d{4,5})\b", text)}
    return ports


def test_every_alert_the_docs_name_is_defined() -> None:
    defined = {rule["alert"] for _, rule in alert_rules() if "alert" in rule}
    mentioned = _mentions(_ALERT)
    assert {"LLMTargetDown", "LLMInferenceDegraded"} <= set(mentioned)
    unknown = {name: where for name, where in mentioned.items() if name not in defined}
    assert not unknown, f"docs name alerts the rules do not define: {unknown}"


def test_every_metric_the_docs_name_is_defined() -> None:
    defined = defined_metrics()
    assert {"llm_target_up", "llm_probe_duration_seconds"} <= defined

    def exists(name: str) -> bool:
        if name.endswith("*"):
            return any(d.startswith(name[:-1]) for d in defined)
        return name in defined or any(
            name.endswith(s) and name[: -len(s)] in defined for s in _SUFFIXES
        )

    mentioned = _mentions(_METRIC)
    assert len(mentioned) >= 20
    unknown = {name: where for name, where in mentioned.items() if not exists(name)}
    assert not unknown, f"docs name metrics the exporter does not define: {unknown}"


def test_every_port_the_docs_name_is_one_the_project_uses() -> None:
    known = known_ports()
    assert {8000, 8001, 18000, 9090, 9093} <= known
    mentioned = _mentions(_HOSTPORT, 1)
    assert "8001" in mentioned
    unknown = {port: where for port, where in mentioned.items() if int(port) not in known}
    assert not unknown, f"docs name ports nothing listens on: {unknown}"


def test_the_checks_catch_what_issue_17_found() -> None:
    """The regular expressions see the two mistakes this test exists for."""
    text = "url: http://llm-heartbeat:9464/hooks/alertmanager\nalertnames: [LLMInferenceFailing]"
    assert [m.group(1) for m in _HOSTPORT.finditer(text)] == ["9464"]
    assert _ALERT.findall(text) == ["LLMInferenceFailing"]
    assert _METRIC.findall("`llm_target_up` and target:llm_availability:ratio_5m") == [
        "llm_target_up"
    ]
