"""vLLM's engine view, as vLLM 0.34 writes it (`vllm/v1/metrics/loggers.py`,
`PrometheusStatLogger`).

- Labels `model_name`, `engine`: one series per data-parallel engine, each judged on its own
  (a summed counter hides one stalled engine behind a healthy one).
- Gauges `vllm:num_requests_running`, `vllm:num_requests_waiting` (waiting includes requests
  deferred for KV transfer or a LoRA budget: `vllm:num_requests_waiting_by_reason{reason=
  "deferred"}`, work the engine cannot do yet, which is no sign of a stall), `vllm:kv_cache_usage_perc` (0-1; before v0.10
  `vllm:gpu_cache_usage_perc`). They are set from engine-core stats only.
- Counter `vllm:generation_tokens` (`_total` and `_created` on the wire), incremented every
  engine step: the progress signal.
- `vllm:engine_sleep_state{sleep_state="awake"}` is 0 while an engine sleeps on purpose
  (`/sleep`): such an engine is neither stalled nor restarted.
- `--disable-log-stats` removes every `vllm:*` series: a page without any is "no engine view".
"""

from __future__ import annotations

from exporter.probes.engines.base import Engine, Found, Names

__all__ = ["NAMES", "Vllm"]

SLEEP = "vllm:engine_sleep_state"
BY_REASON = "vllm:num_requests_waiting_by_reason"
NAMES = Names(
    "vllm",
    running=("vllm:num_requests_running",),
    waiting=("vllm:num_requests_waiting",),
    kv_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    progress=("vllm:generation_tokens_total",),
    generated=("vllm:generation_tokens_total",),
    extra=(SLEEP, BY_REASON),
)


class Vllm(Engine):
    flavour = "vllm"
    upstream = "vLLM 0.34 vllm/v1/metrics/loggers.py"
    unit_label = "engine"
    quiet_hint = "vLLM started with --disable-log-stats?"

    def asleep(self, found: Found, unit: str) -> bool:
        return any(
            labels.get("sleep_state") == "awake" and value == 0
            for labels, value in found.get(SLEEP, ())
            if labels.get("engine", "") == unit
        )

    def deferred(self, found: Found, unit: str) -> float:
        return sum(
            value
            for labels, value in found.get(BY_REASON, ())
            if labels.get("reason") == "deferred"
            and labels.get("engine", "") == unit
            and 0 <= value <= 1e6
        )
