"""The per-target line templates of /metrics (exporter/metrics/lines.py): targets whose series
are alike share one template, each still gets its own text, and label values that look like
the template's own markup (a `%`, the bytes it marks places with, a lone surrogate) are
written as prometheus_client writes them, at the first scrape and at the ones after."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter.config import Settings, TargetConfig
from exporter.engine.monitor import Monitor
from exporter.metrics.collector import MonitorCollector
from exporter.metrics.exposition import render
from exporter.metrics.lines import LineWriter, Templates
from exporter.metrics.rows import FAMILIES, series_shape, target_rows, target_values
from exporter.probes.results import Check, ProbeResult

FAMILY_LINES = [(f.name + f.suffix, f.labels, f.type == "histogram") for f in FAMILIES]
# model ids come from the servers: anything a JSON string can hold
HOSTILE_MODELS = ["m%b%%s%d", "a\x01b", "c\x02d", "e\x00f", 'q"\\\n', "plain"]


def _monitor(models: list[str], now: list[float], detail: str = "compact") -> Monitor:
    targets = [
        TargetConfig(name=f"t{i}", url=f"http://h{i}.test:8000/p%41", model=model)
        for i, model in enumerate(models)
    ]
    settings = Settings(targets=targets, history_file=None, metrics={"detail": detail})
    return Monitor(settings, clock=lambda: now[0])


def _probe_all(monitor: Monitor, now: list[float], duration: float) -> None:
    for name, rt in monitor.targets.items():
        for check in (Check.HEALTH, Check.MODELS, Check.CHAT):
            chat = check is Check.CHAT
            result = ProbeResult(
                check, True, duration, now[0], 200,
                models=(rt.model or "",) if check is Check.MODELS else (),
                ttft=duration / 2 if chat else None, max_stall=0.001 if chat else None,
            )  # fmt: skip
            monitor.record(name, result)
        now[0] += 1


def test_alike_targets_share_one_template_and_each_gets_its_own_text() -> None:
    now = [1764000000.0]
    monitor = _monitor(["m", "m", "other-model"], now)
    _probe_all(monitor, now, 0.01)
    templates: Templates = {}
    writers = []
    for name, rt in monitor.targets.items():
        writer = LineWriter()
        values = target_values(rt, None)
        texts = writer.write(
            FAMILY_LINES, target_rows(name, rt, None), series_shape(rt, None), values, templates
        )
        assert writer.fill(values) == texts  # the kept template gives the same text again
        assert f'target="{name}"'.encode() in b"".join(texts)
        writers.append(writer)
    assert len(writers) == 3
    assert len(templates) == 1  # names, URLs and models differ; the series are alike
    assert all(w.template is writers[0].template for w in writers)


def test_hostile_label_values_are_written_as_prometheus_client_writes_them() -> None:
    now = [1764000000.0]
    monitor = _monitor(HOSTILE_MODELS, now)
    registry = CollectorRegistry()
    registry.register(MonitorCollector(monitor))
    encoder, _ = choose_encoder("")
    bodies = []
    for duration in (0.01, 0.02, 0.5):  # the first scrape writes templates, the rest fill
        _probe_all(monitor, now, duration)
        body, _ = render(registry)
        assert body == encoder(registry)
        bodies.append(body)
    assert len(set(bodies)) == 3
    assert b'model="m%b%%s%d"' in bodies[-1] and b'model="plain"' in bodies[-1]


def test_a_lone_surrogate_is_written_as_a_question_mark_at_every_scrape() -> None:
    """prometheus_client cannot encode one at all; /metrics keeps working."""
    now = [1764000000.0]
    monitor = _monitor(["lone \ud800 surrogate", "plain"], now)
    registry = CollectorRegistry()
    registry.register(MonitorCollector(monitor))
    lines = []
    for duration in (0.01, 0.02):  # written, then filled
        _probe_all(monitor, now, duration)
        body = render(registry)[0].decode()
        lines.append([line for line in body.splitlines() if "t0" in line and "duration" in line])
    assert 'llm_target_info{model="lone ? surrogate",target="t0"' in body
    assert lines[0] and lines[1] and lines[0] != lines[1]


def test_the_template_table_does_not_grow_with_every_change_of_series() -> None:
    """A template (and a series shape) no target uses any more is let go (series come and go: with `full` detail
    the phases of the last probe are series)."""
    now = [1764000000.0]
    monitor = _monitor(["m"] * 4, now, "full")
    collector = MonitorCollector(monitor)
    registry = CollectorRegistry()
    registry.register(collector)
    scrapes = 40  # more than the table may hold for 4 targets
    for i in range(scrapes):  # other series at every scrape: a new template
        for name in monitor.targets:
            result = ProbeResult(Check.HEALTH, True, 0.01, now[0], 200, phases={f"p{i}": 0.001})
            monitor.record(name, result)
        now[0] += 1
        assert f'phase="p{i}"'.encode() in render(registry)[0]
        # pruned to the ones in use before a scrape once over 2 per target (+16); the scrape
        # adds at most one per target
        assert len(collector._templates) <= 3 * len(monitor.targets) + 16
        assert len(collector._shapes) <= 3 * len(monitor.targets) + 16
    assert i == scrapes - 1
