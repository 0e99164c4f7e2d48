"""llama.cpp's `llama-server` engine view, as vendored in llama-cpp-python 0.3.36
(`vendor/llama.cpp/tools/server/server-context.cpp`, the `/metrics` handler, and
`server-task.cpp`, the metrics task).

- `/metrics` only with `--metrics`; without it the route answers 501 with an error of type
  `not_supported_error`: "no engine view", not a failure.
- Gauges `llamacpp:requests_processing`, `llamacpp:requests_deferred`; counters
  `llamacpp:n_decode_total` (+1 per llama_decode(): progress) and
  `llamacpp:tokens_predicted_total` (added when a slot finishes: tokens per second only).
  No KV gauge on current builds (`kv_cache_usage_ratio` was removed; older builds' is read).
- The handler posts a task to the inference loop and waits for its answer: when the loop
  hangs, `/metrics` hangs while `/health` (answered outside the loop) stays 200. A metrics
  read that times out is then the one sign that the loop is stuck.
"""

from __future__ import annotations

from exporter.probes.engines.base import Engine, Names

__all__ = ["NAMES", "LlamaCpp"]

NAMES = Names(
    "llamacpp",
    running=("llamacpp:requests_processing",),
    waiting=("llamacpp:requests_deferred",),
    kv_usage=("llamacpp:kv_cache_usage_ratio",),
    progress=("llamacpp:n_decode_total", "llamacpp:tokens_predicted_total"),
    generated=("llamacpp:tokens_predicted_total",),
)


class LlamaCpp(Engine):
    flavour = "llamacpp"
    upstream = "llama.cpp (llama-cpp-python 0.3.36) tools/server/server-context.cpp"
    read_waits_on_loop = True

    def no_view(self, status: int, body: bytes) -> str | None:
        if status == 501 and b"not_supported_error" in body[:4096]:
            return "HTTP 501 not_supported_error: llama-server runs without --metrics"
        return super().no_view(status, body)
