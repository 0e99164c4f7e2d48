"""SGLang's engine view, as SGLang 0.5.23 writes it (`srt/observability/metrics_collector.py`,
`SchedulerMetricsCollector`; `srt/entrypoints/v1_loads.py` and `srt/managers/load_snapshot.py`
for `/v1/loads`).

- `/metrics` only with `--enable-metrics` (else 404). Labels `model_name, engine_type,
  tp_rank, pp_rank, moe_ep_rank`, plus `dp_rank` (one scheduler per data-parallel rank: an
  engine each, judged on its own) and `priority` with priority scheduling.
- With priority scheduling the total is the `priority=""` series and one series per priority
  is written besides (`_log_gauge_queue_count`): only the total counts. With
  `--enable-metrics-for-all-schedulers` every TP rank of one scheduler writes the same
  figures: only the first rank counts (likewise pp_rank and moe_ep_rank).
- Gauges `sglang:num_running_reqs`, `sglang:num_queue_reqs`, `sglang:token_usage` (0-1).
- Progress: `sglang:realtime_tokens_total{mode="decode"}`, added every log interval while it
  decodes (`increment_realtime_tokens`); `sglang:generation_tokens_total` moves only when a
  request finishes, so it is the fallback for older builds only.
- `/v1/loads` is always mounted: running, waiting and token_usage per DP rank, read here in
  its Prometheus form (`format=prometheus`, gauges `sglang_num_running_reqs{dp_rank}`...). It
  has no progress counter: from it, busy can be told, a stall cannot.
"""

from __future__ import annotations

from exporter.probes.engines.base import Engine, Labels, Names

__all__ = ["LOADS_NAMES", "NAMES", "Sglang", "SglangLoads"]

NAMES = Names(
    "sglang",
    running=("sglang:num_running_reqs",),
    waiting=("sglang:num_queue_reqs",),
    kv_usage=("sglang:token_usage",),
    progress=("sglang:realtime_tokens_total", "sglang:generation_tokens_total"),
    generated=("sglang:realtime_tokens_total", "sglang:generation_tokens_total"),
)
LOADS_NAMES = Names(
    "sglang",
    running=("sglang_num_running_reqs",),
    waiting=("sglang_num_waiting_reqs",),
    kv_usage=("sglang_token_usage",),
)
FIRST_RANK = ("tp_rank", "pp_rank", "moe_ep_rank")


class Sglang(Engine):
    flavour = "sglang"
    upstream = "SGLang 0.5.23 srt/observability/metrics_collector.py"
    unit_label = "dp_rank"
    fallback_path = "/v1/loads?include=core&format=prometheus"

    def keep(self, labels: Labels) -> bool:
        if labels.get("priority", "") != "":
            return False  # a per-priority copy of the total
        if labels.get("mode", "decode") != "decode":
            return False  # realtime_tokens' prefill modes are not generation
        return all(labels.get(k, "0") == "0" for k in FIRST_RANK)

    def fallback(self) -> Engine:
        return SglangLoads(LOADS_NAMES)


class SglangLoads(Engine):
    """SGLang's `/v1/loads?format=prometheus`: one gauge per field, `dp_rank` each."""

    flavour = "sglang"
    upstream = "SGLang 0.5.23 srt/entrypoints/v1_loads.py"
    unit_label = "dp_rank"
