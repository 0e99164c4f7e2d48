"""Grafana: generated JSON is current, every query parses, metric names are in the contract."""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.monitoring.metric_names import metric_names_in, metric_names_used
from tests.monitoring.sources import (
    DASHBOARD_DIR,
    REPO,
    dashboard_expressions,
    dashboard_files,
    grafana_to_promql,
    rule_expressions,
)
from tests.monitoring.tools import require_tool, run

# vLLM's own metric names (vLLM V1 /metrics; see the vLLM source, vllm/v1/metrics/loggers.py).
VLLM_METRICS = {
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:num_preemptions_total",
}


def _contract() -> set[str]:
    text = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(llm_\w+)`", text, flags=re.MULTILINE))


def test_generated_json_is_up_to_date() -> None:
    result = run([sys.executable, "-m", "grafana.generate", "--check"], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generator_check_detects_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grafana import generate

    monkeypatch.setattr(generate, "OUTPUT_DIR", tmp_path)
    assert generate.main(["--check"]) == 1  # nothing generated there yet
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0
    first = sorted(tmp_path.glob("*.json"))[0]
    first.write_text(first.read_text(encoding="utf-8").replace("LLM", "XLM"), encoding="utf-8")
    assert generate.main(["--check"]) == 1


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    expressions = dashboard_expressions(include_variables=False)
    assert len(expressions) > 20
    rules = [
        {"record": f"dashboard:expr_{i}:parse", "expr": grafana_to_promql(e.expr)}
        for i, e in enumerate(expressions)
    ]
    path = tmp_path / "dashboard_exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]}), encoding="utf-8")
    result = run([promtool, "check", "rules", str(path)])
    if result.returncode != 0:
        index = re.findall(r"expr_(\d+)", result.stdout + result.stderr)
        bad = [expressions[int(i)] for i in index]
        raise AssertionError(f"{result.stdout}{result.stderr}\n{bad}")


def test_parse_check_catches_a_broken_expression(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = [{"record": "dashboard:expr_0:parse", "expr": grafana_to_promql("sum by (x (y)")}]
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]}), encoding="utf-8")
    assert run([promtool, "check", "rules", str(path)]).returncode != 0


def test_only_contract_and_vllm_metrics_are_used() -> None:
    used = metric_names_used()
    llm = {n for n in used if n.startswith("llm_")}
    vllm = used - llm
    assert llm <= _contract(), llm - _contract()
    assert vllm <= VLLM_METRICS, vllm - VLLM_METRICS
    # Both sources contribute: the helper sees rules and dashboards.
    assert "llm_target_state" in used and "vllm:kv_cache_usage_perc" in used


def test_metric_names_helper() -> None:
    own = {"target:llm_availability:ratio_rate5m"}
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(llm_probe_ttft_seconds_bucket{target="$target"}'
        "[$__rate_interval]))) + target:llm_availability:ratio_rate5m + vllm:e2e_request_latency_seconds_count"
        ' + on(target) llm_probes_total{reason="llm_fake_in_a_string"}'
    )
    assert metric_names_in(expr, own) == {
        "llm_probe_ttft_seconds",
        "vllm:e2e_request_latency_seconds",
        "llm_probes_total",
    }
    assert not metric_names_in("global:llm_availability_slo:ratio * 2")


def test_dashboards_have_uids_variables_and_required_panels() -> None:
    files = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in dashboard_files()}
    assert set(files) == {"fleet-overview", "target-drilldown"}
    assert len({d["uid"] for d in files.values()}) == 2
    fleet, target = files["fleet-overview"], files["target-drilldown"]
    types = {p["type"] for p in fleet["panels"]}
    assert {"table", "state-timeline"} <= types
    assert fleet["annotations"]["list"][0]["expr"].count("llm_recovery_attempts_total") == 1
    names = [v["name"] for v in target["templating"]["list"]]
    assert "target" in names
    exprs = " ".join(e.expr for e in dashboard_expressions() if "target-drilldown" in e.source)
    for metric in (
        "llm_probe_duration_seconds_bucket",
        "llm_probe_max_stall_seconds",
        "llm_probe_output_tokens_per_second",
        "llm_probe_consecutive_failures",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:e2e_request_latency_seconds_bucket",
    ):
        assert metric in exprs, metric


def test_provisioning_points_at_the_dashboards() -> None:
    prov = REPO / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    assert ds["datasources"][0]["type"] == "prometheus"
    dash = yaml.safe_load((prov / "dashboards" / "llm-heartbeat.yml").read_text(encoding="utf-8"))
    options = dash["providers"][0]["options"]
    assert options["foldersFromFilesStructure"] is True
    assert any(DASHBOARD_DIR.iterdir())
    # Every rule expression is also visible to the helper (sanity of the sources module).
    assert len(rule_expressions()) >= 25


def _drilldown() -> dict:
    return json.loads((DASHBOARD_DIR / "llm-heartbeat" / "target-drilldown.json").read_text())


def _vllm_exprs() -> list[str]:
    exprs = [
        t["expr"]
        for panel in _drilldown()["panels"]
        for t in panel.get("targets", [])
        if "vllm:" in t.get("expr", "")
    ]
    assert len(exprs) >= 6
    return exprs


def test_the_vllm_row_selects_the_targets_own_server() -> None:
    """Two replicas serving one model must not be summed (issue 17): each vLLM query keeps
    only the series whose instance is the host:port of the target's URL. Checked by
    evaluating the dashboard's own expressions in promtool against two such replicas."""
    promtool = require_tool("promtool")
    tests = []
    for expr in _vllm_exprs():
        assert 'llm_target_info{target="$target"}' in expr and "group_left" in expr, expr
        if "histogram_quantile" in expr or "kv_cache" in expr:
            continue
        concrete = expr.replace("$target", "gpu-1").replace("$model", "qwen")
        name = expr.split("(")[1].split("{")[0]
        tests.append(
            {
                "expr": concrete,
                "eval_time": "1m",
                "exp_samples": [{"labels": "{}", "value": 3 if "running" in name else 7}],
            }
        )
    assert len(tests) == 2  # running and waiting
    series = []
    for n, (running, waiting) in ((1, (3, 7)), (2, (5, 11))):
        host = f"gpu-{n}:8000"
        series += [
            {"series": f'vllm:num_requests_running{{instance="{host}",model_name="qwen"}}', "values": f"{running}x2"},
            {"series": f'vllm:num_requests_waiting{{instance="{host}",model_name="qwen"}}', "values": f"{waiting}x2"},
            {"series": f'llm_target_info{{instance="exporter:8001",target="gpu-{n}",url="http://{host}",model="qwen"}}', "values": "1x2"},
        ]  # fmt: skip
    doc = {"rule_files": [], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series, "promql_expr_test": tests}]}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drilldown_test.yml"
        path.write_text(yaml.safe_dump(doc))
        result = run([promtool, "test", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_fleet_table_links_each_target_to_its_drilldown() -> None:
    fleet = json.loads((DASHBOARD_DIR / "llm-heartbeat" / "fleet-overview.json").read_text())
    uid = _drilldown()["uid"]
    table = next(p for p in fleet["panels"] if p.get("type") == "table")
    links = [
        link
        for o in table["fieldConfig"]["overrides"]
        if o["matcher"] == {"id": "byName", "options": "Target"}
        for prop in o["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert len(links) == 1
    assert links[0]["url"].startswith(f"/d/{uid}/?var-target=${{__value.raw}}")


def test_dashboards_use_the_current_schema() -> None:
    from grafana.generate import SCHEMA_VERSION

    assert SCHEMA_VERSION >= 41  # Grafana 12
    files = dashboard_files()
    assert len(files) == 2
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["schemaVersion"] == SCHEMA_VERSION, path.name
        assert "time_options" not in data.get("timepicker", {}), path.name
