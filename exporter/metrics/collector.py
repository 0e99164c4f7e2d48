"""The /metrics view of the monitor: a custom collector over the runtime store.

Each target's lines are written by family into a block that is kept until the target changes
(`TargetRuntime.version`), so a scrape re-renders only what changed since the last one, and
`refresh()` does that work in slices that give the event loop back between them: a scrape never
holds the loop long enough to show up in a probe's timing (issue 16). The one thing that changes
with time alone, whether the engine view is still fresh, is part of what a block was written for."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.engine.monitor import Monitor, TargetRuntime
from exporter.engine.pauses import PauseWatch
from exporter.engine.progress import EngineView
from exporter.metrics.exposition import (
    FastCounter,
    FastFamily,
    FastGauge,
    FastHistogram,
)
from exporter.metrics.lines import NO_TEMPLATE, LineWriter, Templates, TextFamily
from exporter.metrics.rows import (
    FAMILIES,
    Family,
    fresh_engine,
    series_shape,
    target_rows,
    target_values,
)
from exporter.metrics.slices import give_way
from exporter.util.faults import FAULTS, FaultKind

__all__ = ["ExporterCollector", "MonitorCollector"]

SLICE_SECONDS = 0.002  # the longest the render holds the event loop: a probe would count it


# per family: the name its lines start with, its labels, whether it is a histogram
_LINES = tuple((f.name + f.suffix, f.labels, f.type == "histogram") for f in FAMILIES)


@dataclass(slots=True)
class _Block:
    """One target's text, one string per family, as of `version` and the engine view it
    showed (None: none fresh)."""

    rt: TargetRuntime
    version: int
    engine: EngineView | None
    texts: list[bytes]
    writer: LineWriter


def _family(spec: Family) -> FastFamily:
    if spec.type == "histogram":
        return FastHistogram(spec.name, spec.doc, labels=spec.labels)
    if spec.type == "counter":
        return FastCounter(spec.name, spec.doc, labels=spec.labels)
    return FastGauge(spec.name, spec.doc, labels=spec.labels)


class MonitorCollector(Collector):
    """Per-target metrics (names documented in docs/metrics.md). `collect()` serves cached
    per-target blocks (re-rendering the targets that changed); `refresh()` brings the cache up
    to date without holding the event loop, and the /metrics route awaits it first."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self._blocks: dict[str, _Block] = {}
        self._refreshed = False  # collect() serves the blocks as refresh() left them
        # the blocks' line templates and series shapes, each once (alike targets share them)
        self._templates: Templates = {}
        self._shapes: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def _families(self) -> list[Family]:
        full = self.monitor.settings.metrics.full
        return [f for f in FAMILIES if full or not f.full_only]

    def _block(self, name: str, rt: TargetRuntime, now: float) -> _Block:
        """The target's block, re-rendered when the target changed since it was written or
        its engine view went stale."""
        block = self._blocks.get(name)
        engine = fresh_engine(rt, now)
        if (
            block is not None
            and block.rt is rt
            and block.version == rt.version
            and block.engine is engine
        ):
            return block
        writer = block.writer if block is not None and block.rt is rt else LineWriter()
        shape = series_shape(rt, engine)
        texts = writer.fill(target_values(rt, engine)) if writer.fits(shape) else None
        if texts is None:  # new series (or none yet): lines from rows, a template for the shape
            rows, shape = target_rows(name, rt, engine), self._shapes.setdefault(shape, shape)
            texts = writer.write(_LINES, rows, shape, target_values(rt, engine), self._templates)
        if block is None or block.rt is not rt:
            block = self._blocks[name] = _Block(rt, rt.version, engine, texts, writer)
        else:
            block.version, block.engine, block.texts = rt.version, engine, texts
        return block

    def _forget_removed(self) -> None:
        """Drop the blocks of removed targets, and the templates and shapes no block uses any
        more once they outnumber the blocks twice (series come and go: the tables must not only
        grow)."""
        targets = self.monitor.targets
        for name in [n for n in self._blocks if n not in targets]:
            del self._blocks[name]
        limit = 2 * len(self._blocks) + 16
        if len(self._templates) > limit or len(self._shapes) > limit:
            writers = [b.writer for b in self._blocks.values()]
            self._templates = {t: t for w in writers if (t := w.template) is not NO_TEMPLATE}
            self._shapes = {s: s for w in writers if (s := w.shape) is not None}

    async def refresh(self, slice_seconds: float = SLICE_SECONDS) -> None:
        """Re-render the targets that changed, yielding to the event loop every
        `slice_seconds`; `collect()` right after (with no await between) only joins text.

        The slice stays short however long the refresh takes (slices that grew with it
        reached 50-70 ms at 5,000 targets on a busy loop); a 5,000-target scrape still ends
        in ~3 s on a saturated loop, well within Prometheus's scrape timeout (bench/)."""
        self._forget_removed()
        started = time.perf_counter()
        for name, rt in list(self.monitor.targets.items()):
            if self.monitor.targets.get(name) is not rt:  # removed or replaced meanwhile
                continue
            self._block(name, rt, self.monitor.clock())
            if time.perf_counter() - started > slice_seconds:
                await give_way()
                started = time.perf_counter()
        self._refreshed = True

    def collect(self) -> Iterator[Metric]:
        """Every target's cached text. Right after `refresh()` (the /metrics route) a target
        that changed since is served as refreshed: at 5,000 targets a refresh spans seconds
        of probing, and writing those targets again here took 100+ ms in one piece (bench/)."""
        self._forget_removed()
        now = self.monitor.clock()
        as_refreshed, self._refreshed = self._refreshed, False
        blocks = [
            self._kept(name, rt) if as_refreshed else self._block(name, rt, now)
            for name, rt in self.monitor.targets.items()
        ]
        by_family = list(zip(*[b.texts for b in blocks], strict=True)) or [()] * len(FAMILIES)
        for spec in self._families():
            yield TextFamily(
                spec.name,
                spec.doc,
                spec.type,
                by_family[spec.index],
                lambda spec=spec: self._rows_family(spec, now),  # type: ignore[misc]
            )

    def _kept(self, name: str, rt: TargetRuntime) -> _Block:
        block = self._blocks.get(name)
        if block is not None and block.rt is rt:
            return block
        return self._block(name, rt, self.monitor.clock())  # new since the refresh

    def _rows_family(self, spec: Family, now: float) -> FastFamily:
        """The family with every target's rows, for prometheus_client's own encoders (as of
        the collect's `now`, so every family of one scrape agrees on the engine view)."""
        family = _family(spec)
        for name, rt in self.monitor.targets.items():
            for row in target_rows(name, rt, fresh_engine(rt, now))[spec.index]:
                family.add_metric(*row)
        return family


class ExporterCollector(Collector):
    """The exporter's own facts: version, target count, reload status, its own pauses."""

    def __init__(self, monitor: Monitor, pauses: PauseWatch | None = None) -> None:
        self.monitor = monitor
        self.pauses = pauses
        self.reload_ok = True
        self.reload_success_time = 0.0

    def collect(self) -> Iterator[Metric]:
        build = GaugeMetricFamily(
            "llm_exporter_build_info", "Exporter version.", labels=["version"]
        )
        build.add_metric([__version__], 1.0)
        yield build
        yield GaugeMetricFamily(
            "llm_exporter_targets", "Configured targets.", value=len(self.monitor.targets)
        )
        yield GaugeMetricFamily(
            "llm_exporter_config_last_reload_successful",
            "0 when the last reload was rejected (the old config is still in use).",
            value=1.0 if self.reload_ok else 0.0,
        )
        yield GaugeMetricFamily(
            "llm_exporter_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully.",
            value=self.reload_success_time,
        )
        yield from _fault_families()
        maintenance = GaugeMetricFamily(
            "llm_target_maintenance",
            "1 while the target is in an announced maintenance window (absent otherwise): its "
            "probes run and its state is honest, but no shipped alert fires and recovery waits.",
            labels=["target"],
        )
        for window in self.monitor.maintenance.all_active(time.time(), self.monitor.targets):
            maintenance.add_metric([window.target], 1.0)
        yield maintenance
        if self.pauses is not None:
            yield from _pause_families(self.pauses)


def _fault_families() -> Iterator[Metric]:
    """The exporter's own faults (util/faults.py): every kind, 0 included, so a rule over
    `increase()` sees the first one."""
    errors = CounterMetricFamily(
        "llm_exporter_errors",
        "The exporter's own faults before a request reached a target (an unreadable secret "
        "file, a bug in a probe, a deadline missed while its own loop was held): never a "
        "target's state.",
        labels=["kind"],
    )
    problems = GaugeMetricFamily(
        "llm_exporter_problems",
        "The exporter's own problems still open, by kind (the status page names each).",
        labels=["kind"],
    )
    open_by_kind = Counter(f.kind for f in FAULTS.open.values())
    for kind in FaultKind:
        errors.add_metric([kind.value], FAULTS.counts[kind])
        problems.add_metric([kind.value], open_by_kind[kind])
    yield errors
    yield problems


def _pause_families(pauses: PauseWatch) -> Iterator[Metric]:
    """How late the exporter's own event loop woke (a pause is the exporter's, not a target's)."""
    lag = HistogramMetricFamily(
        "llm_exporter_event_loop_lag_seconds",
        "How late the exporter's event loop ran a wake-up due every 100 ms: time every probe "
        "in flight then counted as the server's.",
    )
    lag.add_metric([], pauses.lag.cumulative(), pauses.lag.sum)
    yield lag
    yield CounterMetricFamily(
        "llm_exporter_pause_retries",
        "Probes that timed out while the exporter's own loop was held: asked again, not counted.",
        value=pauses.retries,
    )
