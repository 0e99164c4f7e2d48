"""Target drill-down: one target's probes beside its vLLM server's own metrics."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableHide,
    VariableRefresh,
    VariableSort,
)

from grafana.dashboards_src.common import (
    datasource_variable,
    query,
    recovery_annotation,
    state_expr,
)
from grafana.dashboards_src.panels import bars, stat_panel, state_timeline, timeseries_panel

__all__ = ["build"]

UID = "llm-heartbeat-target"
T = 'target="$target"'
# vLLM labels its metrics with model_name; the target's model comes from llm_target_info.
M = 'model_name="$model"'
# ...and two replicas serving one model share it: the target's OWN server is the one whose
# scrape `instance` (host:port) is the host:port of the target's URL (llm_target_info's `url`).
SERVER = (
    'max by (instance) (label_replace(llm_target_info{target="$target"}, '
    '"instance", "$1", "url", "https?://(?:[^@/]*@)?([^/]+).*"))'
)


def own(series: str) -> str:
    """Only the series of this target's server (`* 1` for each matching instance)."""
    return f"{series} * on (instance) group_left () {SERVER}"


def _variables() -> list[QueryVariable]:
    ds = DataSourceRef(type_val="prometheus", uid="${datasource}")
    target = (
        QueryVariable("target")
        .label("Target")
        .datasource(ds)
        .query("label_values(llm_target_info, target)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )
    model = (
        QueryVariable("model")
        .label("Model")
        .datasource(ds)
        .query(f"label_values(llm_target_info{{{T}}}, model)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .hide(VariableHide.HIDE_VARIABLE)
    )
    return [target, model]


def _quantiles(
    metric: str, by: str, selector: str, legend_prefix: str, server: bool = False
) -> list[Dataquery]:
    """p50 and p95 from a histogram's buckets over $__rate_interval (`server`: only the
    target's own vLLM server's series)."""
    out: list[Dataquery] = []
    for ref, q in (("A", "0.5"), ("B", "0.95")):
        group = f"{by}, le" if by else "le"
        rate = f"rate({metric}_bucket{{{selector}}}[$__rate_interval])"
        expr = f"histogram_quantile({q}, sum by ({group}) ({own(rate) if server else rate}))"
        label = f"{legend_prefix} p{int(float(q) * 100)}"
        out.append(query(expr, label, ref_id=ref))
    return out


def build() -> Dashboard:
    dash = (
        Dashboard("LLM target drill-down")
        .uid(UID)
        .tags(["llm-heartbeat", "llm"])
        .description("One target: what the probes see beside what its vLLM server reports.")
        .time("now-3h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
        .annotation(recovery_annotation(T))
        .link(
            DashboardLink("Fleet overview")
            .type("dashboards")
            .tags(["llm-heartbeat"])
            .keep_time(True)
        )
    )
    for variable in _variables():
        dash = dash.with_variable(variable)
    return (
        dash.with_panel(state_timeline("State", [query(state_expr(T), "{{target}}")], height=4))
        .with_panel(
            stat_panel(
                "Availability 1h",
                [query(f"target:llm_availability:ratio_rate1h{{{T}}}", instant=True)],
                unit="percentunit",
                steps=((None, "red"), (0.99, "orange"), (0.995, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Availability 1d",
                [query(f"target:llm_availability:ratio_rate1d{{{T}}}", instant=True)],
                unit="percentunit",
                steps=((None, "red"), (0.99, "orange"), (0.995, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Availability 3d",
                [query(f"target:llm_availability:ratio_rate3d{{{T}}}", instant=True)],
                unit="percentunit",
                steps=((None, "red"), (0.99, "orange"), (0.995, "green")),
            )
        )
        .with_panel(
            stat_panel(
                "Recovery",
                [
                    query(f"max(llm_recovery_in_progress{{{T}}})", "in progress", "A"),
                    query(f"max(llm_recovery_exhausted{{{T}}})", "exhausted", "B"),
                ],
                description="1 while a recovery action runs; exhausted = a human must act.",
                steps=((None, "green"), (1, "red")),
            )
        )
        .with_row(Row("Probes"))
        .with_panel(
            timeseries_panel(
                "Probe latency by check",
                [
                    *_quantiles("llm_probe_duration_seconds", "check", T, "{{check}}"),
                    query(
                        f"max by (check) (llm_probe_last_duration_seconds{{{T}}})",
                        "{{check}} last",
                        "C",
                    ),
                ],
                unit="s",
            )
        )
        .with_panel(
            timeseries_panel(
                "Time to first token and inter-token stall",
                [
                    *_quantiles("llm_probe_ttft_seconds", "", T, "TTFT"),
                    query(f"max(llm_probe_last_ttft_seconds{{{T}}})", "TTFT last", "C"),
                    query(
                        f"max(llm_probe_max_stall_seconds{{{T}}})", "max stall between chunks", "D"
                    ),
                ],
                unit="s",
                description="Stall: the longest gap between stream chunks in the last chat probe.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Output tokens per second (chat probe)",
                [query(f"max(llm_probe_output_tokens_per_second{{{T}}})", "tokens/s")],
                unit="short",
            )
        )
        .with_panel(
            bars(
                "Synthetic chats sent and skipped",
                [
                    query(
                        f'max(increase(llm_probe_duration_seconds_count{{{T},check="chat"}}'
                        "[$__rate_interval]))",
                        "sent",
                        "A",
                    ),
                    query(
                        f'max by (reason) (increase(llm_probe_skipped_total{{{T},check="chat"}}'
                        "[$__rate_interval]))",
                        "skipped: {{reason}}",
                        "B",
                    ),
                ],
                description="Real traffic is the heartbeat (docs/probe-cost.md): while the "
                "engine shows requests running and generation advancing, the chat probe rests "
                "(traffic), or backs off on a saturated engine (saturated).",
            )
        )
        .with_panel(
            timeseries_panel(
                "Consecutive failures by check",
                [query(f"max by (check) (llm_probe_consecutive_failures{{{T}}})", "{{check}}")],
                description="The exporter declares a target down after 3 consecutive failures.",
                min_value=0,
            )
        )
        .with_panel(
            bars(
                "Failed probes by check and reason",
                [
                    query(
                        f"max by (check, reason) "
                        f"(increase(llm_probe_failures_total{{{T}}}[$__rate_interval]))",
                        "{{check}} {{reason}}",
                    )
                ],
            )
        )
        .with_panel(
            timeseries_panel(
                "HTTP status of the last probe",
                [query(f"max by (check) (llm_probe_http_status_code{{{T}}})", "{{check}}")],
                description="0 means no HTTP answer (refused, timeout).",
            )
        )
        .with_panel(
            bars(
                "Recovery attempts",
                [
                    query(
                        f"sum by (action, result) "
                        f"(increase(llm_recovery_attempts_total{{{T}}}[$__rate_interval]))",
                        "{{action}} {{result}}",
                    )
                ],
                width=24,
            )
        )
        .with_row(Row("Engine (the server's own /metrics, read by the engine check)"))
        .with_panel(
            timeseries_panel(
                "Engine queue",
                [
                    query(f"max(llm_engine_requests_running{{{T}}})", "running", "A"),
                    query(f"max(llm_engine_requests_waiting{{{T}}})", "waiting", "B"),
                ],
                description="Any server (vLLM, SGLang, llama.cpp, TGI), normalized. Waiting "
                "requests at checks.engine.queue_saturated (5) count as saturated.",
                min_value=0,
                width=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "Engine KV cache",
                [query(f"max(llm_engine_kv_cache_usage_ratio{{{T}}})", "used")],
                unit="percentunit",
                min_value=0,
                max_value=1,
                width=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "Engine tokens per second",
                [
                    query(
                        f"max(llm_engine_generation_tokens_per_second{{{T}}})", "generated tokens/s"
                    )
                ],
                description="All users' tokens, from the server's counter: 0 with requests "
                "pending is a stall; high with a full queue is overload.",
                unit="short",
                min_value=0,
                width=6,
            )
        )
        .with_panel(
            timeseries_panel(
                "Engine progress age",
                [
                    query(
                        f"max(llm_engine_progress_age_seconds{{{T}}})", "since generation advanced"
                    )
                ],
                description="Seconds since generation last advanced while work was pending. "
                "At checks.engine.stall_after (20 s) the target is degraded (engine_stalled).",
                unit="s",
                min_value=0,
                width=6,
            )
        )
        .with_row(
            Row(
                "vLLM server (its own /metrics: the scrape whose instance is the target URL's host:port)"
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests running and waiting",
                [
                    query(f"sum({own(f'vllm:num_requests_running{{{M}}}')})", "running", "A"),
                    query(f"sum({own(f'vllm:num_requests_waiting{{{M}}}')})", "waiting", "B"),
                ],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "KV-cache usage",
                [
                    query(
                        f"max by (instance) ({own(f'vllm:kv_cache_usage_perc{{{M}}}')})",
                        "{{instance}}",
                    )
                ],
                unit="percentunit",
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "vLLM time to first token",
                _quantiles("vllm:time_to_first_token_seconds", "", M, "TTFT", server=True),
                unit="s",
                description="All requests the server handled, not only the probes.",
            )
        )
        .with_panel(
            timeseries_panel(
                "vLLM end-to-end request latency",
                _quantiles("vllm:e2e_request_latency_seconds", "", M, "e2e", server=True),
                unit="s",
            )
        )
    )
