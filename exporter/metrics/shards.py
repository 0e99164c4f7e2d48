"""Which shard this replica is, and how many targets all shards share (no shard label on the
per-target metrics: rules and dashboards stay the same with one replica or many)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import ShardingConfig

__all__ = ["ShardCollector"]


class ShardCollector(Collector):
    """Reads the live settings at scrape time: a reload that changes nothing here shows the
    same numbers, one that moves the known targets shows the new count."""

    def __init__(self, sharding: Callable[[], ShardingConfig], known: Callable[[], int]) -> None:
        self.sharding = sharding
        self.known = known

    def collect(self) -> Iterator[Metric]:
        shard = self.sharding()
        yield GaugeMetricFamily(
            "llm_exporter_shards", "Replicas the targets are split across.", value=shard.count
        )
        yield GaugeMetricFamily(
            "llm_exporter_shard_index", "This replica's shard (0-based).", value=shard.index
        )
        yield GaugeMetricFamily(
            "llm_exporter_known_targets",
            "Targets known (static and discovered) before the shard split.",
            value=self.known(),
        )
