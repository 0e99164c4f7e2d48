"""Fleet overview: every target at a glance, its state over time and recovery actions."""

from __future__ import annotations

from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, Row
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DynamicConfigValue

from grafana.dashboards_src.common import (
    PER_TARGET,
    datasource_variable,
    query,
    recovery_annotation,
    state_expr,
    state_mappings,
)
from grafana.dashboards_src.panels import (
    bars,
    stat_panel,
    state_timeline,
    table_panel,
    timeseries_panel,
)
from grafana.dashboards_src.target import UID as TARGET_UID

__all__ = ["build"]

UID = "llm-heartbeat-fleet"
# A click on a target's name opens its drill-down, keeping the time range.
# (Target names are letters, digits and _.:- only: safe in a URL as they are.)
DRILLDOWN_LINK = {
    "title": "${__value.raw}: drill-down",
    "url": f"/d/{TARGET_UID}/?var-target=${{__value.raw}}&${{__url_time_range}}",
}


def _targets_table() -> table.Panel:
    queries = [
        query(state_expr(), ref_id="A", instant=True, table=True),
        query("max by (target, model) (llm_target_info)", ref_id="B", instant=True, table=True),
        query("target:llm_availability:ratio_rate1h", ref_id="C", instant=True, table=True),
        query("target:llm_availability:ratio_rate1d", ref_id="D", instant=True, table=True),
        query("target:llm_probe_ttft_seconds:p50_rate5m", ref_id="E", instant=True, table=True),
        query("target:llm_probe_ttft_seconds:p95_rate5m", ref_id="F", instant=True, table=True),
        query(
            'max by (target) (target_check:llm_probe_duration_seconds:p95_rate5m{check="chat"})',
            ref_id="G",
            instant=True,
            table=True,
        ),
        query(
            "max by (target) (sum without (check, reason) (increase(llm_probe_failures_total[1h])))",
            ref_id="H",
            instant=True,
            table=True,
        ),
        query(
            "topk by (target) (1, max by (target, reason) "
            "(sum without (check) (increase(llm_probe_failures_total[1h]))) > 0)",
            ref_id="I",
            instant=True,
            table=True,
        ),
    ]
    rename = {
        "target": "Target",
        "model": "Model",
        "reason": "Top failure reason (1h)",
        "Value #A": "State",
        "Value #B": "",
        "Value #C": "Availability 1h",
        "Value #D": "Availability 1d",
        "Value #E": "TTFT p50",
        "Value #F": "TTFT p95",
        "Value #G": "Chat latency p95",
        "Value #H": "Failures (1h)",
        "Value #I": "",
    }
    panel = table_panel(
        "Targets",
        queries,
        rename=rename,
        description=(
            "One row per target: current state, availability (share of time up), time to "
            "first token and chat probe latency over 5 minutes, failed probes in the last hour."
        ),
    )
    return (
        panel.override_by_name("State", [DynamicConfigValue("mappings", state_mappings())])
        .override_by_name("Target", [DynamicConfigValue("links", [DRILLDOWN_LINK])])
        .override_by_name(
            "State", [DynamicConfigValue("custom.cellOptions", {"type": "color-background"})]
        )
        .override_by_regexp("Availability.*", [DynamicConfigValue("unit", "percentunit")])
        .override_by_regexp("TTFT.*|Chat latency.*", [DynamicConfigValue("unit", "s")])
        .override_by_regexp("Value #B|Value #I", [DynamicConfigValue("custom.hidden", True)])
    )


def build() -> Dashboard:
    return (
        Dashboard("LLM fleet overview")
        .uid(UID)
        .tags(["llm-heartbeat", "llm"])
        .description("Is every LLM inference server really answering? (llm-heartbeat)")
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
        .annotation(recovery_annotation())
        .link(
            DashboardLink("Target drill-down")
            .type("dashboards")
            .tags(["llm-heartbeat"])
            .include_vars(False)
            .keep_time(True)
        )
        .with_panel(
            stat_panel(
                "Targets up",
                [query(f"count({PER_TARGET}(llm_target_up) == 1) or vector(0)", instant=True)],
                steps=((None, "green"),),
            )
        )
        .with_panel(
            stat_panel(
                "Targets not up",
                [query(f"count({PER_TARGET}(llm_target_up) == 0) or vector(0)", instant=True)],
                steps=((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Recovery exhausted",
                [
                    query(
                        f"count({PER_TARGET}(llm_recovery_exhausted) == 1) or vector(0)",
                        instant=True,
                    )
                ],
                description="Targets whose automatic recovery gave up: a human must act.",
                steps=((None, "green"), (1, "red")),
            )
        )
        .with_panel(
            stat_panel(
                "Exporters up",
                [query('sum(up{job="llm-heartbeat"})', instant=True)],
                steps=((None, "red"), (1, "green")),
            )
        )
        .with_panel(_targets_table())
        .with_panel(
            state_timeline(
                "State timeline",
                [query(state_expr(), "{{target}}")],
                description="up, degraded (health OK, inference failing), starting, down.",
            )
        )
        .with_row(Row("Trends"))
        .with_panel(
            timeseries_panel(
                "Availability (1h window)",
                [query("target:llm_availability:ratio_rate1h", "{{target}}")],
                unit="percentunit",
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Time to first token p95",
                [query("target:llm_probe_ttft_seconds:p95_rate5m", "{{target}}")],
                unit="s",
            )
        )
        .with_panel(
            timeseries_panel(
                "Chat probe latency p95",
                [
                    query(
                        'target_check:llm_probe_duration_seconds:p95_rate5m{check="chat"}',
                        "{{target}}",
                    )
                ],
                unit="s",
            )
        )
        .with_panel(
            bars(
                "Failed probes by reason",
                [
                    query(
                        "max by (target, reason) (sum without (check) "
                        "(increase(llm_probe_failures_total[$__rate_interval])))",
                        "{{target}} {{reason}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "Exporter's own loop lag p99",
                [
                    query(
                        "histogram_quantile(0.99, sum by (instance, le) "
                        "(rate(llm_exporter_event_loop_lag_seconds_bucket[$__rate_interval])))",
                        "{{instance}}",
                    )
                ],
                unit="s",
                description="How late llm-heartbeat's own event loop woke: probes in flight "
                "count it as the targets' latency. Above ~0.1 s: shard the exporter "
                "(LLMHeartbeatOverloaded).",
            )
        )
    )
