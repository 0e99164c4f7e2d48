"""The history stores' health: write errors as a counter, lines waiting for the disk as a
gauge, and the words /-/ready answers with while a store cannot be written."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.util.jsonl_file import JsonlFile

__all__ = ["StoreCollector", "store_problems"]

Stores = Sequence[tuple[str, JsonlFile]]


def store_problems(stores: Stores) -> list[str]:
    """One sentence per store whose last write failed (empty: all is written)."""
    return [
        f"the {name} history {f.path} cannot be written ({f.problem}); "
        f"{f.pending} record(s) wait in memory and are retried"
        for name, f in stores
        if f.problem is not None
    ]


class StoreCollector(Collector):
    """llm_exporter_history_write_errors_total{file} and ..._pending_records{file}."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    def collect(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            "llm_exporter_history_write_errors",
            "Failed writes to a history file (a full disk, a second writer): retried until "
            "they succeed; the records wait in memory.",
            labels=["file"],
        )
        pending = GaugeMetricFamily(
            "llm_exporter_history_pending_records",
            "Records of a history file waiting for the disk (0 when all is written).",
            labels=["file"],
        )
        for name, f in self.stores:
            if f.path is None:
                continue
            errors.add_metric([name], f.errors)
            pending.add_metric([name], f.pending)
        yield errors
        yield pending
