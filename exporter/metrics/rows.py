"""What /metrics says about one target: the families (names in docs/metrics.md) and, for one
target, the rows of each. Written once; the collector turns rows into cached text and, for
prometheus_client's encoders, into families. While a target's series stay the same (its
`series_shape`), a scrape needs only their numbers (`target_values`, in the same order as the
rows: the collector checks they agree each time it writes a target's lines from rows).

Cardinality (docs/metrics.md, "Cardinality"): with `metrics.detail: compact` (the default) a
target with three checks has about 50 series, the families marked `full_only` are left out, and
transitions are counted only into the states the rules take increase() of."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate, islice
from operator import attrgetter
from typing import Any

from exporter.engine.histogram import Histogram
from exporter.engine.monitor import TargetRuntime
from exporter.engine.progress import EngineView
from exporter.engine.state import State
from exporter.metrics.exposition import format_value
from exporter.probes.results import Check

__all__ = ["FAMILIES", "Family", "fresh_engine", "series_shape", "target_rows", "target_values"]

_STATES = tuple(State)
# compact: the transitions the alert rules take increase() of (from 0, so the first counts)
_COMPACT_TRANSITIONS = frozenset({State.DOWN, State.DEGRADED})
# likewise for failures; the others appear when they first happen
_PREINIT_FAILURES = ((Check.MODELS, "model_missing"),)

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Family:
    index: int
    name: str  # without a counter's _total
    doc: str
    type: str
    labels: tuple[str, ...]
    full_only: bool = False

    @property
    def suffix(self) -> str:
        return "_total" if self.type == "counter" else ""


_T, _TC = ("target",), ("target", "check")
_SPECS: tuple[tuple[str, str, str, tuple[str, ...], bool], ...] = (
    ("llm_target_up", "1 when every enabled check passes (state up).", "gauge", _T, False),
    ("llm_target_state", "Current state, one-hot.", "gauge", (*_T, "state"), False),
    ("llm_target_state_since_timestamp_seconds", "When the current state began.", "gauge", _T, True),
    ("llm_target_transitions", "State transitions, by new state.", "counter", (*_T, "to"), False),
    ("llm_target_info", "Target URL (without credentials) and model.", "gauge", ("target", "url", "model"), False),
    ("llm_probe_success", "1 when the last probe passed.", "gauge", _TC, False),
    ("llm_probe_http_status_code", "HTTP status of the last probe, 0 when none.", "gauge", _TC, False),
    ("llm_probe_duration_seconds", "Probe duration.", "histogram", _TC, False),
    ("llm_probe_last_duration_seconds", "Duration of the last probe.", "gauge", _TC, False),
    ("llm_probe_phase_seconds", "Time from the start of the last probe to each phase.", "gauge", (*_TC, "phase"), True),
    ("llm_probe_ttft_seconds", "Time to first content token of passing chat probes.", "histogram", _T, False),
    ("llm_probe_last_ttft_seconds", "Time to first content token of the last chat probe.", "gauge", _T, False),
    ("llm_probe_max_stall_seconds", "Longest gap between stream chunks in the last chat probe.", "gauge", _T, False),
    ("llm_probe_output_tokens_per_second", "Decode speed of the last chat probe that could measure it.", "gauge", _T, False),
    ("llm_probes", "Probes run.", "counter", _TC, True),
    ("llm_probe_failures", "Failed probes by reason.", "counter", (*_TC, "reason"), False),
    ("llm_probe_consecutive_failures", "Failures since the last success.", "gauge", _TC, False),
    ("llm_probe_last_success_timestamp_seconds", "Unix time of the last passing probe.", "gauge", _TC, True),
    ("llm_probe_last_run_timestamp_seconds", "Unix time the last probe completed.", "gauge", _TC, False),
    ("llm_probe_tokens", "Tokens spent by probing.", "counter", ("target", "kind"), True),
    # the server's own view (engine check), normalized across servers: while it is fresh
    ("llm_engine_requests_running", "Requests the engine is running.", "gauge", _T, False),
    ("llm_engine_requests_waiting", "Requests queued in the engine.", "gauge", _T, False),
    ("llm_engine_kv_cache_usage_ratio", "KV-cache usage, 0 to 1 (fullest engine).", "gauge", _T, False),
    ("llm_engine_generation_tokens_per_second", "Generated tokens per second between the last two engine samples.", "gauge", _T, False),
    ("llm_engine_progress_age_seconds", "Seconds since generation last advanced while work was pending (0 when idle).", "gauge", _T, False),
    # a check whose endpoint the server does not have (404/405): no llm_probe_success for it
    ("llm_probe_not_offered", "1 when the server does not offer the check's endpoint (not a failure).", "gauge", _TC, False),
    # only while overloaded because the server refuses work with 429 (alerts tell it apart)
    ("llm_target_rate_limited", "1 while the target is overloaded because it is rate limited (429).", "gauge", _T, False),
    ("llm_probe_skipped", "Probes due and not sent, by reason: traffic (real requests advancing), saturated (backing off).", "counter", (*_TC, "reason"), False),
)  # fmt: skip
FAMILIES = tuple(Family(i, *spec) for i, spec in enumerate(_SPECS))
(
    UP, STATE, SINCE, TRANS, INFO, SUCCESS, STATUS, DURATION, LAST_DURATION, PHASE, TTFT,
    LAST_TTFT, STALL, TPS, PROBES, FAILURES, CONSECUTIVE, LAST_SUCCESS, LAST_RUN, TOKENS,
    ENGINE_RUNNING, ENGINE_WAITING, ENGINE_KV, ENGINE_TPS, ENGINE_AGE, NOT_OFFERED,
    RATE_LIMITED, SKIPPED,
) = range(len(FAMILIES))  # fmt: skip


def fresh_engine(rt: TargetRuntime, now: float) -> EngineView | None:
    """The target's engine view while it is fresh (a stale one says nothing: no series)."""
    policy, view = rt.policy.engine, rt.status.engine
    if policy is None or view is None or not view.fresh(now, policy):
        return None
    return view


def target_rows(name: str, rt: TargetRuntime, engine: EngineView | None) -> list[list[Row]]:
    """One target's rows, one list per family in FAMILIES order (empty when not exported):
    (label values, value), or (label values, cumulative buckets, sum) for histograms.
    `engine`: the fresh engine view (`fresh_engine`), or None."""
    rows: list[list[Row]] = [[] for _ in FAMILIES]
    full = rt.full
    st = rt.status
    t = (name,)
    rows[UP].append((t, 1.0 if st.state is State.UP else 0.0))
    rows[STATE].extend(((name, s.value), 1.0 if st.state is s else 0.0) for s in _STATES)
    if full:
        rows[SINCE].append((t, st.since))
    for s in _STATES:
        if full or s in _COMPACT_TRANSITIONS:
            rows[TRANS].append(((name, s.value), rt.transitions_to[s]))
    rows[INFO].append(((name, rt.safe_url, rt.model or ""), 1.0))
    for check in rt.policy.checks:
        labels = (name, check.value)
        if full:
            rows[PROBES].append((labels, rt.probes[check]))
            for phase, seconds in rt.last_phases.get(check, {}).items():
                rows[PHASE].append(((name, check.value, phase), seconds))
        rows[CONSECUTIVE].append((labels, st.consecutive_failures(check)))
        result = st.latest.get(check)
        if result is not None:
            if result.offered:  # one not offered neither passed nor failed
                rows[SUCCESS].append((labels, 1.0 if result.success else 0.0))
            else:
                rows[NOT_OFFERED].append((labels, 1.0))
            rows[STATUS].append((labels, float(result.status_code or 0)))
            rows[LAST_DURATION].append((labels, result.duration))
        hist = rt.durations.get(check)
        if hist is not None:
            rows[DURATION].append((labels, hist.cumulative(), hist.sum))
        if full and check in rt.last_success:
            rows[LAST_SUCCESS].append((labels, rt.last_success[check]))
        if check in rt.last_run:
            rows[LAST_RUN].append((labels, rt.last_run[check]))
    for check, reason in _PREINIT_FAILURES:
        if check in rt.policy.checks and (check, reason) not in rt.failures:
            rows[FAILURES].append(((name, check.value, reason), 0.0))
    for (check, reason), n in rt.failures.items():
        rows[FAILURES].append(((name, check.value, reason), n))
    if Check.CHAT in rt.policy.checks:
        rows[TTFT].append((t, rt.ttft.cumulative(), rt.ttft.sum))
        if full:
            rows[TOKENS].extend(
                ((name, kind), rt.tokens[kind]) for kind in ("prompt", "completion")
            )
        chat = st.latest.get(Check.CHAT)
        if rt.last_ttft is not None:
            rows[LAST_TTFT].append((t, rt.last_ttft))
        if chat is not None and chat.max_stall is not None:
            rows[STALL].append((t, chat.max_stall))
        if rt.last_tokens_per_second is not None:
            rows[TPS].append((t, rt.last_tokens_per_second))
    if engine is not None:
        sample = engine.sample
        for family, value in (
            (ENGINE_RUNNING, sample.running),
            (ENGINE_WAITING, sample.waiting),
            (ENGINE_KV, sample.kv_usage),
            (ENGINE_TPS, engine.tokens_per_second),
        ):
            if value is not None:
                rows[family].append((t, value))
        if sample.progress is not None:
            rows[ENGINE_AGE].append((t, engine.progress_age))
    if _rate_limited(rt):
        rows[RATE_LIMITED].append((t, 1.0))
    for (check, reason), n in rt.skipped.items():
        rows[SKIPPED].append(((name, check.value, reason), n))
    return rows


def _rate_limited(rt: TargetRuntime) -> bool:
    return rt.status.state is State.OVERLOADED and rt.status.reason == "rate_limited"


# target_values: up and the one-hot states for each state; the transitions counted
_ONE_HOT = {state: (state is State.UP, *[state is s for s in _STATES]) for state in _STATES}
_FULL_TRANSITIONS = _STATES
_TRANSITIONS = tuple(s for s in _STATES if s in _COMPACT_TRANSITIONS)
_DURATION = attrgetter("duration")


def series_shape(rt: TargetRuntime, engine: EngineView | None) -> tuple[Any, ...]:
    """Everything `target_rows` of the same runtime decides its series (labels) by, besides
    what never changes for a runtime (name, URL, checks, detail, bucket layouts): equal shapes,
    equal series. Cheap (no row is built), so a scrape takes it for every changed target."""
    st = rt.status
    chat = st.latest.get(Check.CHAT)
    view: tuple[bool, ...] | None = None
    if engine is not None:
        sample = engine.sample
        view = (
            sample.running is None,
            sample.waiting is None,
            sample.kv_usage is None,
            engine.tokens_per_second is None,
            sample.progress is None,
        )
    return (
        rt.model,
        tuple(st.latest),
        tuple([c for c, r in st.latest.items() if not r.offered]),
        _rate_limited(rt),
        tuple(rt.durations),
        tuple(rt.last_run),
        tuple(rt.failures),
        tuple(rt.skipped),
        rt.last_ttft is None,
        chat is None or chat.max_stall is None,
        rt.last_tokens_per_second is None,
        view,
        (tuple(rt.last_success), tuple([(c, tuple(p)) for c, p in rt.last_phases.items()]))
        if rt.full
        else None,
    )


def _histogram(raw: list[float], hist: Histogram) -> None:
    """A histogram's numbers as its rows give them: cumulative buckets, +Inf, count, sum."""
    raw += islice(accumulate(hist.counts), len(hist.les))
    raw += (hist.count, hist.count, hist.sum)


def _texts(raw: list[float]) -> list[str]:
    """format_value of each, done by repr() in one pass when all of them are finite and below
    1e6 (where floatToGoString is repr() of the float, whatever the sign)."""
    if not raw:
        return []
    total = sum(raw)  # NaN or an infinity anywhere: not finite
    if max(raw) < 1e6 and total - total == 0.0:
        return list(map(repr, map(float, raw)))
    return list(map(format_value, raw))


def target_values(rt: TargetRuntime, engine: EngineView | None) -> list[str]:
    """The numbers of `target_rows(name, rt, engine)`, formatted, family by family in row order
    (a histogram: its buckets, then _count and _sum), without building a row or label."""
    full, st, checks = rt.full, rt.status, rt.policy.checks
    raw: list[float] = list(_ONE_HOT[st.state])  # up, then the states
    raw += map(rt.transitions_to.__getitem__, _FULL_TRANSITIONS if full else _TRANSITIONS)
    raw.append(1.0)  # info
    latest = [r for r in map(st.latest.get, checks) if r is not None]
    raw += [r.success for r in latest if r.offered]
    raw += [r.status_code or 0 for r in latest]
    for hist in map(rt.durations.get, checks):
        if hist is not None:
            _histogram(raw, hist)
    raw += map(_DURATION, latest)
    if full:
        for phases in map(rt.last_phases.get, checks):
            if phases:
                raw += phases.values()
    chat = Check.CHAT in checks
    if chat:
        _histogram(raw, rt.ttft)
        if rt.last_ttft is not None:
            raw.append(rt.last_ttft)
        result = st.latest.get(Check.CHAT)
        if result is not None and result.max_stall is not None:
            raw.append(result.max_stall)
        if rt.last_tokens_per_second is not None:
            raw.append(rt.last_tokens_per_second)
    if full:
        raw += map(rt.probes.__getitem__, checks)
    for check, reason in _PREINIT_FAILURES:
        if check in checks and (check, reason) not in rt.failures:
            raw.append(0)
    raw += rt.failures.values()
    raw += map(st.consecutive_failures, checks)
    out = _texts(raw)
    fmt = format_value  # timestamps
    if full:
        out.insert(1 + len(_STATES), fmt(st.since))  # after up and the states
        out += [fmt(rt.last_success[c]) for c in checks if c in rt.last_success]
    last_run = rt.last_run
    out += [fmt(last_run[c]) for c in checks if c in last_run]
    raw = [rt.tokens["prompt"], rt.tokens["completion"]] if full and chat else []
    if engine is not None:
        sample = engine.sample
        values = (sample.running, sample.waiting, sample.kv_usage, engine.tokens_per_second)
        raw += [v for v in values if v is not None]
        if sample.progress is not None:
            raw.append(engine.progress_age)
    raw += [1.0 for r in latest if not r.offered]
    if _rate_limited(rt):
        raw.append(1.0)
    raw += rt.skipped.values()
    out += _texts(raw)
    return out
