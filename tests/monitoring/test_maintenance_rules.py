"""Maintenance in the shipped rules (issue 22): every alert about a target leaves out targets
in maintenance, the same way (`unless on (target) ... llm_target_maintenance ...`); the
exporter's own alerts, which are about no target, do not. promtool proves the behaviour in
prometheus/tests/llm_target_maintenance_test.yml."""

from __future__ import annotations

import re

from tests.monitoring.sources import alert_rules

# alerts about the exporter itself, not a target: a maintenance does not silence them
EXPORTER_WIDE = {
    "LLMHeartbeatExporterDown",
    "LLMHeartbeatOverloaded",
    "LLMHeartbeatExporterErrors",
    "LLMHeartbeatReplicaDown",
}
EXCLUSION = re.compile(
    r"unless on \(target\) (?:max_over_time\()?llm_target_maintenance(?:\[\w+\]\))? == 1\s*$"
)


def test_every_target_alert_excludes_targets_in_maintenance() -> None:
    rules = alert_rules()
    checked = 0
    for path, rule in rules:
        name = rule["alert"]
        expr = str(rule["expr"]).strip()
        if name in EXPORTER_WIDE:
            assert "llm_target_maintenance" not in expr, f"{path.name}: {name}"
            continue
        assert EXCLUSION.search(expr), f"{path.name}: {name} does not leave out maintenance"
        checked += 1
    assert checked >= 15  # the detection alerts of both profiles, the others, four SLO burns
