"""The fast /metrics writer produces byte for byte what prometheus_client's encoders produce
from the same collectors, for every Accept header Prometheus or a person sends, and the
samples (get_sample_value) are unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry, PlatformCollector
from prometheus_client.exposition import choose_encoder

from exporter.config import Settings, TargetConfig
from exporter.engine.monitor import Monitor
from exporter.metrics.collector import ExporterCollector, MonitorCollector
from exporter.metrics.exposition import format_value, render
from exporter.metrics.slices import CHUNK_BYTES, render_async, render_stream
from exporter.probes.results import Check, EngineSample, ProbeResult, Reason

ACCEPTS = [
    "",
    "*/*",
    "text/plain",
    "text/plain;version=0.0.4",
    "text/plain;version=1.0.0",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text;version=1.0.0;escaping=dots",
    "application/openmetrics-text;version=0.0.1",
    # what Prometheus 2.x/3.x sends
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
]


def _monitor(detail: str = "full") -> Monitor:
    clock = iter(float(1764000000 + i) for i in range(10_000))
    targets = [
        TargetConfig(name="plain", url="http://a.test:8000", model="m"),
        TargetConfig(name="odd", url="http://user:pw@b.test:8000", model='we"ird\\model\nx'),
        TargetConfig(
            name="health-only",
            url="http://c.test",
            checks={"models": {"enabled": False}, "chat": {"enabled": False}},
        ),
        TargetConfig(name="fresh", url="http://d.test"),
        TargetConfig(name="pct", url="http://e.test:8000/a%20b", model="100%s %d"),
        TargetConfig(name="nul", url="http://f.test:8000", model="a\x00b"),
    ]
    settings = Settings(targets=targets, history_file=None, metrics={"detail": detail})
    monitor = Monitor(settings, clock=lambda: next(clock))

    def result(check: Check, ok: bool, duration: float, **kw: object) -> ProbeResult:
        reason = None if ok else kw.pop("reason", Reason.TIMEOUT)
        return ProbeResult(check, ok, duration, 1764000000.5, 200 if ok else None, reason, **kw)  # type: ignore[arg-type]

    for i in range(5):
        monitor.record("plain", result(Check.HEALTH, True, 0.003 * (i + 1)))
        monitor.record("plain", result(Check.MODELS, True, 0.02, models=("m",)))
        monitor.record(
            "plain",
            result(
                Check.CHAT,
                i != 3,
                0.123456789 * i,
                ttft=0.05 + i / 100,
                max_stall=0.01,
                tokens_per_second=123.4,
                prompt_tokens=17,
                completion_tokens=2,
                **({} if i != 3 else {"reason": Reason.VALIDATION_FAILED}),
            ),
        )
        # the engine view is timed by its samples, fresh for 20 s of the clock above
        sample = EngineSample("vllm", 2.0, float(i), 0.25, 100.0 * i, 90.0 * i)
        taken = 1764000030.0 + i
        monitor.record("plain", ProbeResult(Check.ENGINE, True, 0.004, taken, 200, engine=sample))
        monitor.record("odd", result(Check.HEALTH, False, 61.0 + i, reason=Reason.CONNECT_ERROR))
        monitor.record("health-only", result(Check.HEALTH, i % 2 == 0, 1e-7 * (i + 1)))
    return monitor


def _registry(monitor: Monitor) -> CollectorRegistry:
    registry = CollectorRegistry()
    PlatformCollector(registry=registry)
    registry.register(MonitorCollector(monitor))
    registry.register(ExporterCollector(monitor))
    return registry


@pytest.mark.parametrize("detail", ["compact", "full"])
@pytest.mark.parametrize("accept", ACCEPTS)
def test_render_is_byte_identical_to_prometheus_client(accept: str, detail: str) -> None:
    registry = _registry(_monitor(detail))
    encoder, content_type = choose_encoder(accept)
    body, ctype = render(registry, accept)
    assert ctype == content_type
    assert body.decode() == encoder(registry).decode()
    sliced = asyncio.run(render_async(registry, accept, slice_seconds=0.0))
    assert sliced == (body, ctype)


def test_samples_are_still_readable_from_the_registry() -> None:
    registry = _registry(_monitor())
    assert registry.get_sample_value("llm_probes_total", {"target": "plain", "check": "chat"}) == 5
    assert (
        registry.get_sample_value(
            "llm_probe_duration_seconds_bucket",
            {"target": "plain", "check": "health", "le": "0.01"},
        )
        == 3
    )
    assert registry.get_sample_value("llm_probe_ttft_seconds_count", {"target": "plain"}) == 4
    assert (
        registry.get_sample_value(
            "llm_target_info",
            {"target": "odd", "url": "http://b.test:8000", "model": 'we"ird\\model\nx'},
        )
        == 1.0
    )
    failures = {"target": "odd", "check": "health", "reason": "connect_error"}
    assert registry.get_sample_value("llm_probe_failures_total", failures) == 5


def test_escaped_label_values_in_the_text() -> None:
    body, _ = render(_registry(_monitor()))
    assert 'model="we\\"ird\\\\model\\nx"' in body.decode()


@pytest.mark.parametrize(
    "value",
    [
        0,
        1,
        7,
        999_999,
        1_000_000,
        123_456_789,
        -3,
        0.0,
        -0.0,
        5.0,
        999_999.0,
        1e6,
        1.5,
        1e-7,
        1764000000.5,
        1764000000.0,
        -2.0,
        float("inf"),
        float("nan"),
        True,
    ],
)
def test_format_value_matches_float_to_go_string(value: float) -> None:
    from prometheus_client.utils import floatToGoString

    assert format_value(value) == floatToGoString(value)


def _series(body: bytes, target: str) -> list[str]:
    return [
        line
        for line in body.decode().splitlines()
        if not line.startswith("#") and f'target="{target}"' in line
    ]


def test_compact_keeps_about_fifty_series_per_target_and_full_adds_the_rest() -> None:
    compact = _series(render(_registry(_monitor("compact")))[0], "plain")
    full = _series(render(_registry(_monitor("full")))[0], "plain")
    # blackbox_exporter: 17 series per module, here four checks (health, models, chat, engine)
    assert 40 <= len(compact) <= 17 * 4 < len(full)
    assert sum(line.startswith("llm_engine_") for line in compact) == 5
    assert not [line for line in compact if line.startswith("llm_probes_total")]
    assert [line for line in full if line.startswith("llm_probes_total")]
    # the compact buckets put a bound at each alert threshold (2 s GET, 10 s chat, 2 s TTFT)
    assert (
        'llm_probe_duration_seconds_bucket{check="health",le="2.0",target="plain"} 5.0' in compact
    )
    assert 'llm_probe_duration_seconds_bucket{check="chat",le="10.0",target="plain"} 5.0' in compact
    assert any(line.startswith('llm_probe_ttft_seconds_bucket{le="2.0"') for line in compact)


def test_a_changed_target_is_rendered_again_and_a_removed_one_is_gone() -> None:
    monitor = _monitor("compact")
    registry = _registry(monitor)
    line = 'llm_probe_consecutive_failures{check="health",target="health-only"}'
    assert f"{line} 0.0" in render(registry)[0].decode()
    # begun after the last success (an older failure is stale to the state machine)
    begun = 1764000001.0
    monitor.record(
        "health-only", ProbeResult(Check.HEALTH, False, 0.1, begun, None, Reason.CONNECT_ERROR)
    )
    assert f"{line} 1.0" in render(registry)[0].decode()
    monitor.apply(monitor.settings.model_copy(update={"targets": monitor.settings.targets[:2]}))
    assert 'target="health-only"' not in render(registry)[0].decode()


def _turns_given_back(work: Callable[[], Awaitable[object]]) -> int:
    """How many times the event loop ran another task while `work` ran."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def main() -> int:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        await work()
        task.cancel()
        return ticks - before

    return asyncio.run(main())


def test_refresh_gives_the_event_loop_back_between_slices() -> None:
    monitor = _monitor("full")
    collector = MonitorCollector(monitor)
    turns = _turns_given_back(lambda: collector.refresh(slice_seconds=0.0))  # after every target
    assert turns >= len(monitor.targets) - 1


def test_the_streamed_body_comes_in_pieces_that_join_to_the_rendered_one() -> None:
    targets = [TargetConfig(name=f"t{i}", url=f"http://t{i}.test", model="m") for i in range(600)]
    monitor = Monitor(Settings(targets=targets, history_file=None))
    for target in targets:  # enough series for a body of several pieces
        monitor.record(target.name, ProbeResult(Check.HEALTH, True, 0.01, 1764000000.0, 200))
    registry = _registry(monitor)
    whole, _ = render(registry)

    async def stream() -> list[bytes]:
        pieces, _ = render_stream(registry)
        return [piece async for piece in pieces]

    pieces = asyncio.run(stream())
    assert len(pieces) > 1 and b"".join(pieces) == whole
    assert all(len(piece) >= CHUNK_BYTES for piece in pieces[:-1])


def test_render_async_gives_the_event_loop_back_between_families() -> None:
    registry = _registry(_monitor("compact"))
    turns = _turns_given_back(lambda: render_async(registry, slice_seconds=0.0))
    families = sum(1 for _ in registry.collect())
    assert turns >= families


def test_a_probe_woken_during_a_scrape_runs_before_the_next_slice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer that arrives while the refresh holds the loop is read before the refresh's
    next slice: with `sleep(0)` between slices the next slice ran first, and a probe in
    flight counted both slices as the server's latency."""
    import socket

    import exporter.metrics.collector as collector_module

    monitor = _monitor("full")
    for rt in monitor.targets.values():
        rt.version += 1
    collector = MonitorCollector(monitor)
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    slices: list[str] = []
    real_give_way = collector_module.give_way

    async def give_way() -> None:
        slices.append("slice")
        if len(slices) == 1:
            writer.send(b"x")  # an answer arrives during the first slice
        await real_give_way()

    monkeypatch.setattr(collector_module, "give_way", give_way)

    async def main() -> int:
        loop = asyncio.get_running_loop()

        async def probe() -> int:
            await loop.sock_recv(reader, 1)
            return len(slices)  # slices begun before this probe read its answer

        task = asyncio.create_task(probe())
        await asyncio.sleep(0)
        await collector.refresh(slice_seconds=0.0)  # a slice per target
        return await task

    try:
        seen = asyncio.run(main())
    finally:
        reader.close()
        writer.close()
    assert len(slices) >= 3
    assert seen == 1


ENGINE_GAUGES = (
    "llm_engine_requests_running",
    "llm_engine_requests_waiting",
    "llm_engine_kv_cache_usage_ratio",
    "llm_engine_generation_tokens_per_second",
    "llm_engine_progress_age_seconds",
)


@pytest.mark.parametrize("detail", ["compact", "full"])
def test_engine_gauges_while_the_view_is_fresh_and_gone_once_it_is_stale(detail: str) -> None:
    """Staleness comes with time alone (no new result): the cached block must notice."""
    now = [1764000000.0]
    target = TargetConfig(name="e", url="http://e.test", model="m")
    settings = Settings(targets=[target], history_file=None, metrics={"detail": detail})
    monitor = Monitor(settings, clock=lambda: now[0])
    registry = _registry(monitor)
    for i in range(2):  # two samples: tokens/s needs both
        sample = EngineSample("vllm", 3.0, 1.0, 0.5, 10.0 * (i + 1), 10.0 * (i + 1))
        monitor.record("e", ProbeResult(Check.ENGINE, True, 0.004, now[0], 200, engine=sample))
        now[0] += 5
    body = render(registry)[0].decode()
    for name in ENGINE_GAUGES:
        assert f'{name}{{target="e"}}' in body, name
    assert 'llm_engine_requests_running{target="e"} 3.0' in body
    assert 'llm_engine_generation_tokens_per_second{target="e"} 2.0' in body
    assert 'llm_probe_success{check="engine",target="e"} 1.0' in body
    assert 'llm_target_state{state="overloaded",target="e"} 0.0' in body
    now[0] += 3600  # nothing recorded since: the view says nothing any more
    body = render(registry)[0].decode()
    assert not [line for line in body.splitlines() if line.startswith("llm_engine_")]
    assert 'llm_probe_success{check="engine",target="e"} 1.0' in body  # the last read stays


def _scrape_matches_prometheus_client(
    registry: CollectorRegistry, collector: MonitorCollector
) -> str:
    """One scrape through the cached path (refresh, then render), compared with what
    prometheus_client's own encoder writes from the same samples."""
    asyncio.run(collector.refresh())
    body = render(registry)[0].decode()
    encoder, _ = choose_encoder("")
    assert body == encoder(registry).decode()
    return body


@pytest.mark.parametrize("detail", ["compact", "full"])
def test_a_kept_template_is_written_again_when_the_series_change(detail: str) -> None:
    """Each step changes which series a target has (not only their numbers); a template kept
    from the scrape before would put numbers under the old labels or miss a series."""
    now = [1764000000.0]
    target = TargetConfig(name="s", url="http://s.test")  # no model: discovered later
    settings = Settings(targets=[target], history_file=None, metrics={"detail": detail})
    monitor = Monitor(settings, clock=lambda: now[0])
    registry = CollectorRegistry()
    collector = MonitorCollector(monitor)
    registry.register(collector)

    def record(check: Check, ok: bool = True, **kw: object) -> None:
        reason = None if ok else kw.pop("reason")
        result = ProbeResult(check, ok, 0.01, now[0], 200 if ok else None, reason, **kw)  # type: ignore[arg-type]
        monitor.record("s", result)
        now[0] += 1

    steps: list[tuple[Callable[[], None], str]] = [
        (lambda: record(Check.HEALTH), 'llm_probe_success{check="health",target="s"} 1.0'),
        (lambda: record(Check.HEALTH), 'llm_probe_success{check="health",target="s"} 1.0'),
        (  # other phases, as many (full: llm_probe_phase_seconds)
            lambda: record(Check.HEALTH, phases={"connected": 0.001}),
            'llm_probe_success{check="health",target="s"} 1.0',
        ),
        (
            lambda: record(Check.HEALTH, phases={"response_headers": 0.002}),
            'phase="response_headers"' if detail == "full" else 'check="health"',
        ),
        (  # a new failure reason: a new series
            lambda: record(Check.HEALTH, False, reason=Reason.TIMEOUT),
            'llm_probe_failures_total{check="health",reason="timeout",target="s"} 1.0',
        ),
        (lambda: record(Check.MODELS), 'llm_target_info{model="",target="s",url="http://s.test"}'),
        (  # the model label changes once discovered, and nothing else does
            lambda: record(Check.MODELS, models=("found",)),
            'llm_target_info{model="found",target="s",url="http://s.test"} 1.0',
        ),
        (  # a chat probe with a stall but no tokens/s
            lambda: record(Check.CHAT, ttft=0.2, max_stall=0.05),
            'llm_probe_max_stall_seconds{target="s"} 0.05',
        ),
        (
            lambda: record(Check.ENGINE, engine=EngineSample("vllm", 1.0, None, 0.5, 10.0, 10.0)),
            'llm_engine_kv_cache_usage_ratio{target="s"} 0.5',
        ),
        (  # the engine view goes stale with time alone
            lambda: now.__setitem__(0, now[0] + 3600),
            'llm_probe_success{check="engine",target="s"} 1.0',
        ),
    ]
    bodies = []
    for change, expected in steps:
        change()
        body = _scrape_matches_prometheus_client(registry, collector)
        assert expected in body
        bodies.append(_series(body.encode(), "s"))
    assert len(bodies) == len(steps)
    engine = [[line for line in body if line.startswith("llm_engine_")] for body in bodies]
    assert engine[-2] and not engine[-1]


@pytest.mark.parametrize("detail", ["compact", "full"])
def test_the_numbers_alone_agree_with_the_rows(detail: str) -> None:
    """target_values must give the rows' numbers in the rows' order, else the writer keeps no
    template and every scrape builds rows again (right, but the slow way)."""
    from exporter.metrics.lines import LineWriter
    from exporter.metrics.rows import FAMILIES, series_shape, target_rows, target_values

    monitor = _monitor(detail)
    families = [(f.name + f.suffix, f.labels, f.type == "histogram") for f in FAMILIES]
    kept = []
    for name, rt in monitor.targets.items():
        writer, shape = LineWriter(), series_shape(rt, None)
        writer.write(families, target_rows(name, rt, None), shape, target_values(rt, None))
        kept.append(writer.fits(shape) or name == "nul")  # a NUL in a label: no template
    assert len(kept) == len(monitor.targets) and all(kept)


def test_a_scrape_serves_what_its_refresh_wrote_and_a_bare_collect_is_current() -> None:
    monitor = _monitor("compact")
    collector = MonitorCollector(monitor)
    registry = CollectorRegistry()
    registry.register(collector)
    series = 'llm_probe_last_duration_seconds{check="health",target="plain"}'

    def last(body: bytes) -> str:
        return next(line for line in body.decode().splitlines() if line.startswith(series))

    asyncio.run(collector.refresh())
    monitor.record("plain", ProbeResult(Check.HEALTH, True, 9.5, 1764000001.0, 200))
    served, _ = render(registry)  # the scrape the refresh was for: as refreshed
    current, _ = render(registry)  # no refresh before it: written again
    assert last(served) == f"{series} 0.015"
    assert last(current) == f"{series} 9.5"
