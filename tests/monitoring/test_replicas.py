"""Two exporter replicas show what one shows (docs/ha.md): every dashboard expression,
evaluated by promtool over one replica's series and over two replicas' (the same series
again with another `instance` and `pod`), gives the same result. A panel that sums or counts
the replicas' series raw doubles, and fails here. Alerts: prometheus/tests/replicas_test.yml."""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from tests.monitoring.durations import seconds
from tests.monitoring.sources import PROMETHEUS_DIR, dashboard_expressions, grafana_to_promql
from tests.monitoring.tools import require_tool, run

N = 100  # samples, 15 s apart
STATES = ("unknown", "starting", "up", "overloaded", "degraded", "down")


def _one_replica() -> list[tuple[str, str]]:
    """(series without the replica's labels, values) of one exporter watching two targets:
    `x` (the dashboards' $target) up and busy, `t2` down and failing."""
    out: list[tuple[str, str]] = []
    for target, up in (("x", True), ("t2", False)):
        t = f'target="{target}"'
        state = "up" if up else "down"
        out.append((f"llm_target_up{{{t}}}", f"{int(up)}x{N}"))
        out += [(f'llm_target_state{{{t},state="{s}"}}', f"{int(s == state)}x{N}") for s in STATES]
        out.append((f'llm_target_info{{{t},url="http://{target}:8000",model="m"}}', f"1x{N}"))
        out.append((f'llm_target_transitions_total{{{t},to="down"}}', f"0+{0 if up else 0.1}x{N}"))
        for check in ("health", "models", "chat"):
            tc = f'{t},check="{check}"'
            out.append((f"llm_probe_success{{{tc}}}", f"{int(up)}x{N}"))
            out.append((f"llm_probe_http_status_code{{{tc}}}", f"{200 if up else 0}x{N}"))
            out.append((f"llm_probe_last_duration_seconds{{{tc}}}", f"0.3x{N}"))
            out.append((f"llm_probe_consecutive_failures{{{tc}}}", f"0+{0 if up else 1}x{N}"))
            out.append((f"llm_probe_last_run_timestamp_seconds{{{tc}}}", f"0+15x{N}"))
            if not up:
                out.append((f'llm_probe_failures_total{{{tc},reason="timeout"}}', f"0+1x{N}"))
            for le, step in (("0.1", 0), ("0.5", 1), ("1", 1), ("+Inf", 1)):
                out.append(
                    (f'llm_probe_duration_seconds_bucket{{{tc},le="{le}"}}', f"0+{step}x{N}")
                )
            out.append((f"llm_probe_duration_seconds_count{{{tc}}}", f"0+1x{N}"))
            out.append((f"llm_probe_duration_seconds_sum{{{tc}}}", f"0+0.3x{N}"))
        for le, step in (("0.1", 0), ("0.5", 1), ("+Inf", 1)):
            out.append((f'llm_probe_ttft_seconds_bucket{{{t},le="{le}"}}', f"0+{step}x{N}"))
        for name, value in (
            ("llm_probe_last_ttft_seconds", 0.2),
            ("llm_probe_max_stall_seconds", 0.05),
            ("llm_probe_output_tokens_per_second", 40),
            ("llm_engine_requests_running", 3),
            ("llm_engine_requests_waiting", 1),
            ("llm_engine_kv_cache_usage_ratio", 0.4),
            ("llm_engine_generation_tokens_per_second", 120),
            ("llm_engine_progress_age_seconds", 0),
            ("llm_recovery_in_progress", 0),
            ("llm_recovery_exhausted", 0 if up else 1),
        ):
            out.append((f"{name}{{{t}}}", f"{value}x{N}"))
        out.append((f'llm_probe_skipped_total{{{t},check="chat",reason="traffic"}}', f"0+1x{N}"))
    return out


def _world(replicas: int) -> list[dict[str, str]]:
    series = []
    for i in range(replicas):
        replica = f'job="llm-heartbeat",instance="exporter-{i}:8001",pod="exporter-{i}"'
        for name, values in _one_replica():
            labelled = name.replace("{", "{" + replica + ",", 1)
            series.append({"series": labelled, "values": values})
        # the receivers share their rails: one of them acted, the other counted nothing
        attempts = f"0+{0.05 if i == 0 else 0}x{N}"
        series.append(
            {
                "series": f'llm_recovery_attempts_total{{{replica},target="t2",action="command",result="failed"}}',
                "values": attempts,
            }
        )
    return series


GOT = re.compile(r'expr: "(?:[^"\\]|\\.)*", time: (\S+),\n\s+exp: nil\n\s+got: (.*)')
SAMPLE = re.compile(r"(\{[^}]*\}) (\S+?)(?:, |$)")


def _results(tmp_path: Path, replicas: int, exprs: list[str]) -> dict[int, dict[str, float]]:
    """Each expression's result (labels -> value) at its own evaluation time."""
    promtool = require_tool("promtool")
    rules = [str(PROMETHEUS_DIR / "rules" / f) for f in ("recording.yml", "slo.yml")]
    tests = [
        {
            "name": f"{replicas} replicas",
            "interval": "15s",
            "input_series": _world(replicas),
            "promql_expr_test": [
                {"expr": e, "eval_time": f"20m{i}s", "exp_samples": []} for i, e in enumerate(exprs)
            ],
        }
    ]
    path = tmp_path / f"world{replicas}_test.yml"
    path.write_text(
        yaml.safe_dump({"rule_files": rules, "evaluation_interval": "15s", "tests": tests})
    )
    output = run([promtool, "test", "rules", str(path)])
    text = output.stdout + output.stderr
    assert "expr:" in text, text[:2000]  # the dashboards have results: the comparison is not empty
    found: dict[int, dict[str, float]] = {}
    for when, got in GOT.findall(text):
        index = int(seconds(when) - 1200)
        found[index] = {labels: float(value) for labels, value in SAMPLE.findall(got)}
    return found


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-9)
        or (math.isnan(a[k]) and math.isnan(b[k]))
        for k in a
    )


def test_two_replicas_show_what_one_shows(tmp_path: Path) -> None:
    exprs = []
    for e in dashboard_expressions(include_variables=False):
        promql = grafana_to_promql(e.expr)
        if "vllm:" in promql or "up{" in promql or "by (instance" in promql:
            continue  # the server's own series; the replicas themselves (one line each)
        exprs.append(promql)
    assert len(exprs) > 20
    one = _results(tmp_path, 1, exprs)
    two = _results(tmp_path, 2, exprs)
    assert len(one) > 20, one  # most panels have something to show in this world
    doubled = [
        exprs[i]
        for i in sorted(one.keys() | two.keys())
        if not _same(one.get(i, {}), two.get(i, {}))
    ]
    assert not doubled, "\n".join(doubled)
