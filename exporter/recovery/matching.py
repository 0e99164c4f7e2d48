"""Which rule takes an alert (first match wins), and which actions can apply to a target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from exporter.config.recovery import RuleConfig

__all__ = ["actions_for_target", "match_rule"]


def _applies(rule: RuleConfig, target: str, target_label: str) -> bool:
    if rule.match.targets and target not in rule.match.targets:
        return False
    wanted = rule.match.labels.get(target_label)
    return wanted is None or wanted == target


def match_rule(
    rules: Sequence[RuleConfig], labels: Mapping[str, str], target: str, target_label: str
) -> RuleConfig | None:
    alertname = labels.get("alertname", "")
    for rule in rules:
        if rule.match.alertnames and alertname not in rule.match.alertnames:
            continue
        if not _applies(rule, target, target_label):
            continue
        if all(labels.get(k) == v for k, v in rule.match.labels.items()):
            return rule
    return None


def actions_for_target(rules: Sequence[RuleConfig], target: str, target_label: str) -> set[str]:
    """Action types some rule could run for `target` (to pre-initialise metric label sets)."""
    return {r.action.type for r in rules if _applies(r, target, target_label)}
