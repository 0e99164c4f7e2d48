"""The /metrics view of the monitor: a custom collector that builds fresh metric families from
the runtime store at scrape time (no global registry, no per-sample objects kept around)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.engine.monitor import Monitor
from exporter.engine.progress import EngineView
from exporter.engine.state import State
from exporter.metrics.exposition import FastCounter, FastGauge, FastHistogram
from exporter.probes.results import Check

__all__ = ["ExporterCollector", "MonitorCollector"]

_STATES = tuple(State)
# failure series that alert rules take increase() of start at 0, so the first failure counts;
# the others appear when they first happen (33 zero series per target would cost render time)
_PREINIT_FAILURES = ((Check.MODELS, "model_missing"),)


class MonitorCollector(Collector):
    """Per-target metrics (names documented in docs/metrics.md). Its families keep rows, not
    samples: `exporter.metrics.exposition.render` writes them ten times faster than prometheus_client,
    whose encoders still see the same samples."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        t = ["target"]
        tc = ["target", "check"]
        up = FastGauge("llm_target_up", "1 when every enabled check passes (state up).", labels=t)
        state = FastGauge("llm_target_state", "Current state, one-hot.", labels=[*t, "state"])
        since = FastGauge(
            "llm_target_state_since_timestamp_seconds", "When the current state began.", labels=t
        )
        trans = FastCounter(
            "llm_target_transitions", "State transitions, by new state.", labels=[*t, "to"]
        )
        info = FastGauge(
            "llm_target_info",
            "Target URL (without credentials) and model.",
            labels=["target", "url", "model"],
        )
        success = FastGauge("llm_probe_success", "1 when the last probe passed.", labels=tc)
        status = FastGauge(
            "llm_probe_http_status_code", "HTTP status of the last probe, 0 when none.", labels=tc
        )
        duration = FastHistogram("llm_probe_duration_seconds", "Probe duration.", labels=tc)
        last_duration = FastGauge(
            "llm_probe_last_duration_seconds", "Duration of the last probe.", labels=tc
        )
        ttft = FastHistogram(
            "llm_probe_ttft_seconds",
            "Time to first content token of passing chat probes.",
            labels=t,
        )
        last_ttft = FastGauge(
            "llm_probe_last_ttft_seconds",
            "Time to first content token of the last chat probe.",
            labels=t,
        )
        stall = FastGauge(
            "llm_probe_max_stall_seconds",
            "Longest gap between stream chunks in the last chat probe.",
            labels=t,
        )
        tps = FastGauge(
            "llm_probe_output_tokens_per_second",
            "Decode speed of the last chat probe that could measure it.",
            labels=t,
        )
        probes = FastCounter("llm_probes", "Probes run.", labels=tc)
        failures = FastCounter(
            "llm_probe_failures", "Failed probes by reason.", labels=[*tc, "reason"]
        )
        consecutive = FastGauge(
            "llm_probe_consecutive_failures", "Failures since the last success.", labels=tc
        )
        last_success = FastGauge(
            "llm_probe_last_success_timestamp_seconds",
            "Unix time of the last passing probe.",
            labels=tc,
        )
        last_run = FastGauge(
            "llm_probe_last_run_timestamp_seconds", "Unix time the last probe completed.", labels=tc
        )
        tokens = FastCounter(
            "llm_probe_tokens", "Tokens spent by probing.", labels=["target", "kind"]
        )
        engine = _EngineFamilies()
        now = self.monitor.clock()
        for name, rt in self.monitor.targets.items():
            st = rt.status
            up.add_metric([name], 1.0 if st.state is State.UP else 0.0)
            for s in _STATES:
                state.add_metric([name, s.value], 1.0 if st.state is s else 0.0)
            since.add_metric([name], st.since)
            for s in _STATES:  # zeros too, so increase() sees the first transition
                trans.add_metric([name, s.value], rt.transitions_to[s])
            info.add_metric([name, rt.config.safe_url, rt.model or ""], 1.0)
            for check in rt.policy.checks:
                labels = [name, check.value]
                probes.add_metric(labels, rt.probes[check])
                consecutive.add_metric(labels, st.consecutive_failures(check))
                result = st.latest.get(check)
                if result is not None:
                    success.add_metric(labels, 1.0 if result.success else 0.0)
                    status.add_metric(labels, float(result.status_code or 0))
                    last_duration.add_metric(labels, result.duration)
                hist = rt.durations.get(check)
                if hist is not None:
                    duration.add_metric(labels, hist.cumulative(), hist.sum)
                if check in rt.last_success:
                    last_success.add_metric(labels, rt.last_success[check])
                if check in rt.last_run:
                    last_run.add_metric(labels, rt.last_run[check])
            for check, reason in _PREINIT_FAILURES:
                if check in rt.policy.checks and (check, reason) not in rt.failures:
                    failures.add_metric([name, check.value, reason], 0.0)
            for (check, reason), n in rt.failures.items():
                failures.add_metric([name, check.value, reason], n)
            if Check.CHAT in rt.policy.checks:
                ttft.add_metric([name], rt.ttft.cumulative(), rt.ttft.sum)
                for kind in ("prompt", "completion"):
                    tokens.add_metric([name, kind], rt.tokens[kind])
                chat = st.latest.get(Check.CHAT)
                if rt.last_ttft is not None:
                    last_ttft.add_metric([name], rt.last_ttft)
                if chat is not None and chat.max_stall is not None:
                    stall.add_metric([name], chat.max_stall)
                if rt.last_tokens_per_second is not None:
                    tps.add_metric([name], rt.last_tokens_per_second)
            ep = rt.policy.engine
            if ep is not None and st.engine is not None and st.engine.fresh(now, ep):
                engine.add(name, st.engine)
        yield from (
            up, state, since, trans, info, success, status, duration, last_duration, ttft,
            last_ttft, stall, tps, probes, failures, consecutive, last_success, last_run, tokens,
            *engine.families(),
        )  # fmt: skip


class _EngineFamilies:
    """The server's own view, normalized across servers: five gauges per target with a fresh
    engine view (absent when the target exports no metrics or the view went stale)."""

    def __init__(self) -> None:
        t = ["target"]
        self.running = FastGauge(
            "llm_engine_requests_running", "Requests the engine is running.", labels=t
        )
        self.waiting = FastGauge(
            "llm_engine_requests_waiting", "Requests queued in the engine.", labels=t
        )
        self.kv = FastGauge(
            "llm_engine_kv_cache_usage_ratio", "KV-cache usage, 0 to 1 (fullest engine).", labels=t
        )
        self.tps = FastGauge(
            "llm_engine_generation_tokens_per_second",
            "Generated tokens per second between the last two engine samples.",
            labels=t,
        )
        self.age = FastGauge(
            "llm_engine_progress_age_seconds",
            "Seconds since generation last advanced while work was pending (0 when idle).",
            labels=t,
        )

    def add(self, name: str, view: EngineView) -> None:
        s = view.sample
        for family, value in (
            (self.running, s.running),
            (self.waiting, s.waiting),
            (self.kv, s.kv_usage),
            (self.tps, view.tokens_per_second),
        ):
            if value is not None:
                family.add_metric([name], value)
        if s.progress is not None:
            self.age.add_metric([name], view.progress_age)

    def families(self) -> tuple[Metric, ...]:
        return (self.running, self.waiting, self.kv, self.tps, self.age)


class ExporterCollector(Collector):
    """The exporter's own facts: version, target count, reload status."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
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
