"""`metrics:`: how much of each target /metrics shows (docs/metrics.md, "Cardinality")."""

from __future__ import annotations

from typing import Literal

from exporter.config.base import Strict

__all__ = ["MetricsConfig"]


class MetricsConfig(Strict):
    """`detail: compact` (default) keeps about 50 series per target with three checks, what
    blackbox_exporter exposes for three modules: every series a shipped rule or dashboard reads,
    histograms with buckets at the alert thresholds. `full` adds the fine-grained buckets
    (14 for durations, 11 for TTFT), the per-check probe counters and last-success times, the
    token counters, the state start time and the probe phase timings."""

    detail: Literal["compact", "full"] = "compact"

    @property
    def full(self) -> bool:
        return self.detail == "full"
