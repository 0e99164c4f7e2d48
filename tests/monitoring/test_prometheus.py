"""Prometheus content: configs, rules, promtool unit tests, alert metadata, profile parity."""

from __future__ import annotations

import itertools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml

from tests.conftest import found
from tests.monitoring.durations import seconds
from tests.monitoring.sources import (
    PROMETHEUS_DIR,
    REPO,
    alert_rules,
    recording_rule_names,
    rule_files,
)
from tests.monitoring.tools import require_tool, run

TEST_DIR = PROMETHEUS_DIR / "tests"
TEST_FILES = found(TEST_DIR.glob("*_test.yml"), f"promtool tests in {TEST_DIR}")
PROFILES = ["prometheus.yml", "prometheus-fast.yml"]
RUNBOOK_PREFIX = "https://github.com/llm-heartbeat/llm-heartbeat/blob/main/docs/runbooks.md#"
# `for:` of each LLMAvailabilitySLOBurn window pair, by long window (kubernetes-mixin).
BURN_FOR = {"1h": 120.0, "6h": 900.0, "1d": 3600.0, "3d": 10800.0}

REQUIRED_ALERTS = {
    "LLMTargetDown": "critical",
    "LLMInferenceDegraded": "critical",
    "LLMTargetOverloaded": "warning",
    "LLMTargetRateLimited": "warning",
    "LLMTargetStartingTooLong": "warning",
    "LLMModelMissing": "warning",
    "LLMLatencyHigh": "warning",
    "LLMTimeToFirstTokenHigh": "warning",
    "LLMAvailabilitySLOBurn": None,  # critical pages and warning tickets
    "LLMTargetFlapping": "warning",
    "LLMHeartbeatExporterDown": "critical",
    "LLMHeartbeatReplicaDown": "warning",
    "LLMHeartbeatStale": "critical",
    "LLMHeartbeatOverloaded": "warning",
    "LLMRecoveryExhausted": "critical",
    "LLMHeartbeatExporterErrors": "warning",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# ---- promtool ------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", PROFILES)
def test_promtool_check_config(profile: str) -> None:
    promtool = require_tool("promtool")
    result = run([promtool, "check", "config", profile], cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    promtool = require_tool("promtool")
    files = [str(p) for p in rule_files()]
    result = run([promtool, "check", "rules", *files])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def promtool_unit_results() -> dict[Path, CompletedProcess[str]]:
    """Run every promtool test file at once (the SLO file alone takes seconds)."""
    promtool = require_tool("promtool")
    workers = max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            path: pool.submit(run, [promtool, "test", "rules", path.name], TEST_DIR)
            for path in TEST_FILES
        }
        return {path: future.result() for path, future in futures.items()}


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(
    test_file: Path, promtool_unit_results: dict[Path, CompletedProcess[str]]
) -> None:
    result = promtool_unit_results[test_file]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A wrong expectation must make promtool fail: the suite is not vacuous."""
    promtool = require_tool("promtool")
    original = _load(TEST_DIR / "llm_target_down_test.yml")
    broken = dict(original)
    broken["rule_files"] = [str(PROMETHEUS_DIR / "rules/default/detection.yml")]
    group = dict(original["tests"][0])
    # Expect the alert one evaluation before the scrape that says down.
    group["alert_rule_test"] = [{**original["tests"][0]["alert_rule_test"][1], "eval_time": "55s"}]
    broken["tests"] = [group]
    path = tmp_path / "broken_test.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run([promtool, "test", "rules", str(path)])
    assert result.returncode != 0


# ---- structure of the promtool tests -------------------------------------------------------
def _cases() -> list[tuple[Path, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(file, file data, group, alert_rule_test case) for every case of every test file."""
    out = []
    for path in TEST_FILES:
        data = _load(path)
        for group in data["tests"]:
            for case in group.get("alert_rule_test", []):
                out.append((path, data, group, case))
    return out


def test_every_test_group_is_named() -> None:
    for path in TEST_FILES:
        for group in _load(path)["tests"]:
            assert group.get("name"), f"{path.name}: a test group has no name"


@pytest.mark.parametrize("alert", sorted(REQUIRED_ALERTS))
def test_every_alert_has_firing_and_silent_cases(alert: str) -> None:
    cases = [c for c in _cases() if c[3]["alertname"] == alert]
    assert any(c[3].get("exp_alerts") for c in cases), f"{alert}: no case where it fires"
    silent_groups = {
        c[2]["name"]
        for c in cases
        if not any(
            x[3].get("exp_alerts") for x in cases if x[2] is c[2] and x[3]["alertname"] == alert
        )
    }
    assert silent_groups, f"{alert}: no test group in which it must stay silent"


@pytest.mark.parametrize(
    "alert",
    [
        "LLMTargetDown",
        "LLMInferenceDegraded",
        "LLMTargetOverloaded",
        "LLMTargetRateLimited",
        "LLMAvailabilitySLOBurn",
    ],
)
def test_must_not_fire_on_single_failure_or_loading(alert: str) -> None:
    names = " | ".join(c[2]["name"] for c in _cases() if c[3]["alertname"] == alert)
    assert "single failed probe" in names, f"{alert}: no single-failed-probe case"
    assert re.search(r"loading|reload", names), f"{alert}: no still-loading case"


def _fires_at(cases: list[Any], alert: str) -> list[tuple[float, bool, float]]:
    """(eval time, fires?, evaluation interval) for every case of `alert`, per group."""
    out = []
    for _path, data, _group, case in cases:
        if case["alertname"] == alert:
            interval = seconds(data.get("evaluation_interval", "1m"))
            out.append((seconds(case["eval_time"]), bool(case.get("exp_alerts")), interval))
    return out


@pytest.mark.parametrize("alert", sorted(REQUIRED_ALERTS))
def test_alert_is_evaluated_just_before_and_after_it_fires(alert: str) -> None:
    """Some group checks silence one evaluation before the first firing evaluation."""
    by_group: dict[int, list[Any]] = {}
    for c in _cases():
        by_group.setdefault(id(c[2]), []).append(c)
    for cases in by_group.values():
        points = sorted(_fires_at(cases, alert))
        for (t1, f1, interval), (t2, f2, _) in itertools.pairwise(points):
            if not f1 and f2 and 0 < t2 - t1 <= interval:
                return
    pytest.fail(f"{alert}: no test checks it one evaluation before and at its firing")


# alerts about one exporter replica itself; every other alert is about a target (or the whole
# job) and must aggregate the replicas away: one alert per incident (docs/ha.md)
PER_REPLICA = {"LLMHeartbeatOverloaded", "LLMHeartbeatReplicaDown", "LLMHeartbeatExporterErrors"}


@pytest.mark.parametrize("alert", sorted(set(REQUIRED_ALERTS) - PER_REPLICA))
def test_every_target_alert_aggregates_the_replicas_away(alert: str) -> None:
    """No series selector's `instance` survives: either dropped (`without (instance, pod)`),
    or every `by (...)` grouping that reaches the result leaves it out. The promtool file
    replicas_test.yml checks the behaviour with two replicas' series."""
    exprs = [r["expr"] for _path, r in alert_rules() if r["alert"] == alert]
    assert exprs, alert
    for expr in exprs:
        groupings = re.findall(r"\bby \(([^)]*)\)", expr)
        outer = re.search(r"without \(instance, pod\)", expr) is not None
        assert (
            outer
            or (groupings and all("instance" not in g for g in groupings))
            or (
                "target:" in expr  # recorded per target (slo.yml)
            )
        ), f"{alert}: keeps one series per replica: {expr}"


# ---- alerts: labels, annotations, runbooks -------------------------------------------------
def _anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the headings."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_required_alerts_exist_with_their_severity() -> None:
    seen: dict[str, set[str]] = {}
    for _path, rule in alert_rules():
        seen.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert set(REQUIRED_ALERTS) <= set(seen), set(REQUIRED_ALERTS) - set(seen)
    for alert, severity in REQUIRED_ALERTS.items():
        if severity is not None:
            assert seen[alert] == {severity}, alert
    assert seen["LLMAvailabilitySLOBurn"] == {"critical", "warning"}


def test_every_alert_has_labels_annotations_and_a_runbook_section() -> None:
    anchors = _anchors((REPO / "docs" / "runbooks.md").read_text(encoding="utf-8"))
    for path, rule in alert_rules():
        where = f"{path.name}: {rule['alert']}"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, where
        annotations = rule["annotations"]
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key), f"{where}: missing {key}"
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), f"{where}: {url}"
        anchor = url.removeprefix(RUNBOOK_PREFIX)
        assert anchor == rule["alert"].lower(), f"{where}: runbook anchor {anchor}"
        assert anchor in anchors, f"{where}: docs/runbooks.md has no section #{anchor}"


def test_target_down_never_matches_starting() -> None:
    rules = {r["alert"]: r for _p, r in alert_rules()}
    expr = rules["LLMTargetDown"]["expr"]
    assert 'state="down"' in expr and "starting" not in expr


def test_slo_objective_is_defined_once_and_used_by_every_burn_rule() -> None:
    slo = _load(PROMETHEUS_DIR / "rules" / "slo.yml")
    rules = slo["groups"][0]["rules"]
    objective = [r for r in rules if r.get("record") == "global:llm_availability_slo:ratio"]
    assert len(objective) == 1
    assert re.fullmatch(r"vector\(0\.\d+\)", objective[0]["expr"].strip())
    burns = [r for r in rules if r.get("alert") == "LLMAvailabilitySLOBurn"]
    pairs = {
        (r["labels"]["burn_rate"], r["labels"]["long_window"], r["labels"]["short_window"])
        for r in burns
    }
    assert pairs == {("14.4", "1h", "5m"), ("6", "6h", "30m"), ("3", "1d", "2h"), ("1", "3d", "6h")}
    for rule in burns:
        rate, long_w, short_w = (
            rule["labels"][k] for k in ("burn_rate", "long_window", "short_window")
        )
        expr = rule["expr"]
        assert expr.count("scalar(global:llm_availability_slo:ratio)") == 3
        assert f"ratio_rate{long_w})" in expr and f"ratio_rate{short_w})" in expr
        # the guard against windows that hold only minutes of data
        assert f"target:llm_unavailable_time:ratio_rate{long_w} >" in expr
        assert expr.count(f"> {rate} *") == 3
        # kubernetes-mixin's KubeAPIErrorBudgetBurn durations
        assert seconds(rule["for"]) == BURN_FOR[long_w], rule["labels"]


def test_availability_leaves_out_unknown_and_never_divides_by_zero() -> None:
    slo = _load(PROMETHEUS_DIR / "rules" / "slo.yml")
    ratios = {
        r["record"]: r["expr"]
        for r in slo["groups"][0]["rules"]
        if r.get("record", "").startswith(("target:llm_availability:", "target:llm_unavailable"))
    }
    assert len(ratios) == 11
    for name, expr in ratios.items():
        assert 'llm_target_state{state="unknown"}' in expr, name
        assert "ignoring (state)" in expr, name
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        expr = ratios[f"target:llm_availability:ratio_rate{window}"]
        assert re.search(r"\)\s*> 0\s*\)\s*$", expr), f"{window}: denominator not filtered"


# ---- recording rules -----------------------------------------------------------------------
def test_recording_rules_follow_level_metric_operation() -> None:
    names = recording_rule_names()
    for name in names:
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", name), name
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert f"target:llm_availability:ratio_rate{window}" in names
    for window in ("1h", "6h", "1d", "3d"):
        assert f"target:llm_unavailable_time:ratio_rate{window}" in names
    for q in ("p50", "p95", "p99"):
        assert f"target:llm_probe_ttft_seconds:{q}_rate5m" in names
        assert f"target_check:llm_probe_duration_seconds:{q}_rate5m" in names


# ---- profiles ------------------------------------------------------------------------------
def _strip_for(data: Any) -> Any:
    for group in data["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    return data


def test_fast_and_default_detection_rules_differ_only_in_for() -> None:
    default = _load(PROMETHEUS_DIR / "rules" / "default" / "detection.yml")
    fast = _load(PROMETHEUS_DIR / "rules" / "fast" / "detection.yml")
    d_for = {r["alert"]: seconds(r["for"]) for r in default["groups"][0]["rules"]}
    f_for = {r["alert"]: seconds(r["for"]) for r in fast["groups"][0]["rules"]}
    assert d_for.keys() == f_for.keys()
    for alert in d_for:
        assert f_for[alert] <= d_for[alert], alert
    assert _strip_for(default) == _strip_for(fast)


@pytest.mark.parametrize(
    ("profile", "rules"), [("prometheus.yml", "default"), ("prometheus-fast.yml", "fast")]
)
def test_detection_alerts_do_not_confirm_twice(profile: str, rules: str) -> None:
    """The exporter confirms down/degraded itself (and never reports a stale state), so the
    rules add no `for:`; fault -> webhook is the exporter's time plus at most one scrape and
    one evaluation (goals: 45 s default, 10 s fast; BENCHMARKS.md)."""
    config = _load(PROMETHEUS_DIR / profile)
    detection = _load(PROMETHEUS_DIR / "rules" / rules / "detection.yml")
    evaluation = seconds(config["global"]["evaluation_interval"])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "llm-heartbeat")
    scrape = seconds(job.get("scrape_interval", config["global"]["scrape_interval"]))
    budget = {"default": 45 - 36, "fast": 10 - 7.5}[rules]  # goal minus the exporter's worst
    checked = 0
    for rule in detection["groups"][0]["rules"]:
        if rule["alert"] in ("LLMTargetDown", "LLMInferenceDegraded"):
            assert seconds(rule["for"]) == 0, (profile, rule["alert"])
            checked += 1
        if rule["alert"] in ("LLMTargetOverloaded", "LLMTargetRateLimited"):  # warnings: robust
            # against one odd scrape
            assert seconds(rule["for"]) >= 2 * max(scrape, evaluation), (profile, rule["alert"])
    assert checked == 2
    assert scrape + evaluation <= budget + 1, profile


def test_fast_profile_scrapes_and_evaluates_every_second() -> None:
    """Goal: fault -> webhook within 10 s."""
    fast = _load(PROMETHEUS_DIR / "prometheus-fast.yml")
    job = next(j for j in fast["scrape_configs"] if j["job_name"] == "llm-heartbeat")
    assert seconds(fast["global"]["evaluation_interval"]) == 1
    assert seconds(job["scrape_interval"]) == 1
    assert seconds(job["scrape_timeout"]) <= 1


def test_profiles_load_their_own_rules_and_intervals() -> None:
    default = _load(PROMETHEUS_DIR / "prometheus.yml")
    fast = _load(PROMETHEUS_DIR / "prometheus-fast.yml")
    assert default["rule_files"] == ["rules/*.yml", "rules/default/*.yml"]
    assert fast["rule_files"] == ["rules/*.yml", "rules/fast/*.yml"]
    assert seconds(fast["global"]["evaluation_interval"]) < seconds(
        default["global"]["evaluation_interval"]
    )
    for config in (default, fast):
        jobs = {j["job_name"]: j for j in config["scrape_configs"]}
        assert {"llm-heartbeat", "vllm"} <= set(jobs)
        assert jobs["llm-heartbeat"]["static_configs"][0]["targets"] == ["llm-heartbeat:8001"]
        assert jobs["vllm"]["static_configs"][0]["targets"] == ["vllm:8000"]
        am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
        assert am == ["alertmanager:9093"]
