"""Where the monitoring content lives, and every PromQL expression it contains."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import found

__all__ = [
    "ALERTMANAGER_DIR",
    "DASHBOARD_DIR",
    "PROMETHEUS_DIR",
    "REPO",
    "Expression",
    "alert_rules",
    "dashboard_expressions",
    "dashboard_files",
    "grafana_to_promql",
    "recording_rule_names",
    "rule_expressions",
    "rule_files",
]

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "prometheus"
ALERTMANAGER_DIR = REPO / "alertmanager"
DASHBOARD_DIR = REPO / "grafana" / "dashboards"


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it came from (for error messages)."""

    source: str
    expr: str


def rule_files() -> list[Path]:
    """Every rule file of every profile: rules/*.yml and rules/<profile>/*.yml."""
    rules = PROMETHEUS_DIR / "rules"
    return found([*rules.glob("*.yml"), *rules.glob("*/*.yml")], f"rule files in {rules}")


def _rules(path: Path) -> Iterator[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for group in data.get("groups", []):
        yield from group.get("rules", [])


def alert_rules() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, rule) for path in rule_files() for rule in _rules(path) if "alert" in rule]


def recording_rule_names() -> set[str]:
    return {rule["record"] for path in rule_files() for rule in _rules(path) if "record" in rule}


def rule_expressions() -> list[Expression]:
    out = []
    for path in rule_files():
        for rule in _rules(path):
            name = rule.get("alert") or rule.get("record")
            out.append(Expression(f"{path.relative_to(REPO)}: {name}", str(rule["expr"])))
    return out


def dashboard_files() -> list[Path]:
    return found(DASHBOARD_DIR.rglob("*.json"), f"dashboards in {DASHBOARD_DIR}")


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions(*, include_variables: bool = True) -> list[Expression]:
    """Panel and annotation queries; with include_variables also the template variables'
    queries (`label_values(...)`, which is Grafana syntax, not PromQL)."""
    out = []
    for path in dashboard_files():
        data = json.loads(path.read_text(encoding="utf-8"))
        name = path.relative_to(REPO)
        for panel in _panels(data.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append(Expression(f"{name}: {panel.get('title')}", target["expr"]))
        for annotation in data.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                out.append(
                    Expression(f"{name}: annotation {annotation['name']}", annotation["expr"])
                )
        if include_variables:
            for variable in data.get("templating", {}).get("list", []):
                query = variable.get("query")
                if variable.get("type") == "query" and isinstance(query, str):
                    out.append(Expression(f"{name}: variable {variable['name']}", query))
    return out


# Grafana's built-in and dashboard variables, replaced by values PromQL accepts.
_RANGE_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def grafana_to_promql(expr: str) -> str:
    """The expression with Grafana variables substituted, so promtool can parse it."""

    def sub(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return _RANGE_VARS.get(name, "x")

    return _VAR.sub(sub, expr)
