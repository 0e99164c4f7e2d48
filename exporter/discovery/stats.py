"""Per-source discovery counters and the collector that exports them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["DiscoveryCollector", "DiscoveryStats", "SourceStats"]


@dataclass
class SourceStats:
    targets: int = 0
    errors: int = 0
    last_success: float | None = None


class DiscoveryStats:
    """Per-source counters that outlive reloads (a reload rebuilds the sources, not these)."""

    def __init__(self) -> None:
        self.sources: dict[str, SourceStats] = {}

    def get(self, name: str) -> SourceStats:
        return self.sources.setdefault(name, SourceStats())

    def forget(self, keep: set[str]) -> None:
        """Drop the gauges of sources no longer configured (their error counts stay)."""
        for name, stats in self.sources.items():
            if name not in keep:
                stats.targets = 0


class DiscoveryCollector(Collector):
    def __init__(self, stats: DiscoveryStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        targets = GaugeMetricFamily(
            "llm_discovery_targets", "Targets the source currently lists.", labels=["source"]
        )
        errors = CounterMetricFamily(
            "llm_discovery_errors",
            "Failed reads of the source (the last good list is kept).",
            labels=["source"],
        )
        last = GaugeMetricFamily(
            "llm_discovery_last_success_timestamp_seconds",
            "When the source was last read successfully.",
            labels=["source"],
        )
        for name, s in sorted(self.stats.sources.items()):
            targets.add_metric([name], s.targets)
            errors.add_metric([name], s.errors)
            if s.last_success is not None:
                last.add_metric([name], s.last_success)
        yield from (targets, errors, last)
