"""Every exporter (`llm_*`) and vLLM (`vllm:*`) metric name the rules and dashboards use.

    from tests.monitoring.metric_names import metric_names_used
    missing = metric_names_used() - names_a_live_exporter_exports

Histogram series are reported by their base name (`llm_probe_ttft_seconds`, not
`..._bucket`); recording rules defined in prometheus/rules/ (`level:metric:operation`) are
not metric names and are left out.
"""

from __future__ import annotations

import re

from tests.monitoring.sources import dashboard_expressions, recording_rule_names, rule_expressions

__all__ = ["metric_names_in", "metric_names_used"]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'" + r"|`[^`]*`")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_IDENT = re.compile(r"(?<![\w:])[A-Za-z_:][\w:]*")
_SUFFIXES = ("_bucket", "_sum", "_count")


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def metric_names_in(expr: str, exclude: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """`llm_*` and `vllm:*` names in one expression (strings and Grafana variables ignored)."""
    text = _VARIABLE.sub(" ", _STRING.sub(" ", expr))
    names = set()
    for token in _IDENT.findall(text):
        if token in exclude:
            continue
        if (token.startswith("llm_") and ":" not in token) or token.startswith("vllm:"):
            names.add(_base(token))
    return names


def metric_names_used() -> set[str]:
    """Base names of every `llm_*`/`vllm:*` metric any rule or dashboard expression uses."""
    own = recording_rule_names()
    names: set[str] = set()
    for expression in [*rule_expressions(), *dashboard_expressions()]:
        names |= metric_names_in(expression.expr, own)
    return names
