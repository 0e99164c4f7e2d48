"""Text Generation Inference's engine view (huggingface/text-generation-inference
`backends/v3/src/queue.rs` and `backend.rs`, router `server.rs`; metrics-rs with its
Prometheus exporter, so counters carry no `_total`).

- Gauges `tgi_queue_size`, `tgi_batch_current_size`; counter
  `tgi_batch_inference_success{method}` (+1 per successful prefill or decode pass: progress);
  histogram `tgi_request_generated_tokens` (its `_sum`: tokens of finished requests). No KV
  gauge.
- Series are created lazily, on first use: a fresh idle TGI has no `tgi_queue_size` or
  `tgi_batch_current_size` yet. A TGI page without them is an idle server (0 and 0).
"""

from __future__ import annotations

from exporter.probes.engines.base import Engine, Names

__all__ = ["NAMES", "Tgi"]

NAMES = Names(
    "tgi",
    running=("tgi_batch_current_size",),
    waiting=("tgi_queue_size",),
    progress=("tgi_batch_inference_success",),
    generated=("tgi_request_generated_tokens_sum",),
    extra=("tgi_request_count",),
)


class Tgi(Engine):
    flavour = "tgi"
    upstream = "text-generation-inference backends/v3/src (main)"
    absent_is_idle = True
