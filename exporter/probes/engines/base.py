"""What a server's engine module says, and the one reading every server shares.

A module per server (vllm.py, sglang.py, llamacpp.py, tgi.py) subclasses `Engine`: which
names mean running, waiting, KV use and progress; which label names one engine of several;
which series are the server's own total (never summed with their parts); what answer means
"this server offers no engine view"; and whether its metrics page waits on the inference loop.
`read_sample` turns the parsed series into one `EngineSample` the same way for all of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.errors import EngineParseError
from exporter.probes.results import EngineSample, EngineUnit

__all__ = ["QUANTITIES", "Engine", "Found", "Labels", "Names", "base_name", "read_sample"]

QUANTITIES = ("running", "waiting", "kv_usage", "progress", "generated")
COUNTS = ("running", "waiting")
MAX_REQUESTS = 1e6
"""More running or waiting requests than this is no server's queue: the page is refused."""
MAX_COUNTER = 1e15
"""A token or step counter past this (a year at 30 million tokens/s) is not a real count."""

Labels = Mapping[str, str]
Found = dict[str, list[tuple[Labels, float]]]
"""{base metric name (no `_total`): [(labels, value)]}, each series once."""


def base_name(name: str) -> str:
    """A counter's family name: `x_total` and `x` are the same metric."""
    return name[: -len("_total")] if name.endswith("_total") else name


@dataclass(frozen=True, slots=True)
class Names:
    """Per quantity, the metric names to try in order (the first one present wins)."""

    flavour: str
    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    kv_usage: tuple[str, ...] = ()
    progress: tuple[str, ...] = ()
    generated: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    """Further names the module reads itself (vLLM's sleep state)."""

    def all(self) -> tuple[str, ...]:
        return tuple(n for q in (*QUANTITIES, "extra") for n in getattr(self, q))


class Engine:
    """One server's engine knowledge; the defaults suit a server with one engine and no
    label to choose by. Subclasses override only what their server does differently."""

    flavour = "custom"
    upstream = ""
    """The upstream file and version the module follows (shown in docs and errors)."""
    unit_label: str | None = None
    """The label that names one engine of several (each judged on its own), if any."""
    read_waits_on_loop = False
    """The metrics page is answered by the inference loop itself: no answer while /health
    answers means the loop is stuck (llama-server)."""
    absent_is_idle = False
    """The gauges appear only once used: a page without them is an idle server (TGI)."""
    quiet_hint = ""
    """What a metrics page without any of the server's series usually means."""
    fallback_path: str | None = None
    """Another path with running/waiting when the metrics page is off (SGLang's /v1/loads)."""

    def __init__(self, names: Names) -> None:
        self.names = names

    def no_view(self, status: int, body: bytes) -> str | None:
        """Why this answer means the server offers no engine view (not a fault), or None."""
        if status == 404:
            return "HTTP 404: the server exports no metrics"
        return None

    def keep(self, labels: Labels) -> bool:
        """Whether a series counts (False for a server's per-part copies of its total)."""
        return True

    def asleep(self, found: Found, unit: str) -> bool:
        """Whether the server says engine `unit` sleeps on purpose."""
        return False

    def deferred(self, found: Found, unit: str) -> float:
        """Requests of engine `unit`'s `waiting` it holds back on purpose (not a stall)."""
        return 0.0

    def fallback(self) -> Engine | None:
        """How to read `fallback_path`, if the server has one."""
        return None


def _unit(engine: Engine, labels: Labels) -> str:
    return labels.get(engine.unit_label, "") if engine.unit_label else ""


def _checked(quantity: str, name: str, labels: Labels, value: float) -> float:
    """Refuse what no server sends: NaN, infinities, negatives, absurd sizes."""
    where = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}")
    if not math.isfinite(value) or value < 0:
        raise EngineParseError(f"{where} is {value}: not a usable {quantity} value")
    if quantity in COUNTS and value > MAX_REQUESTS:
        raise EngineParseError(f"{where} is {value:g}: not a plausible number of requests")
    if quantity == "kv_usage" and value > 1.0 + 1e-9:
        raise EngineParseError(f"{where} is {value:g}: not a ratio between 0 and 1")
    if value > MAX_COUNTER:
        raise EngineParseError(f"{where} is {value:g}: not a plausible {quantity} value")
    return value


def _per_unit(engine: Engine, quantity: str, found: Found) -> tuple[str, dict[str, float]] | None:
    """The first of the quantity's names the page has, and its {engine unit: value}."""
    for name in getattr(engine.names, quantity):
        series = [(lb, v) for lb, v in found.get(base_name(name), ()) if engine.keep(lb)]
        if not series:
            continue
        out: dict[str, float] = {}
        for labels, value in series:
            unit = _unit(engine, labels)
            value = _checked(quantity, name, labels, value)
            if quantity == "kv_usage":  # a ratio: the fullest part of one engine
                out[unit] = max(out.get(unit, 0.0), value)
            else:  # distinct series of one engine (e.g. TGI's per-method counter)
                out[unit] = out.get(unit, 0.0) + value
        return name, out
    return None


def read_sample(engine: Engine, found: Found) -> tuple[EngineSample, int]:
    """The sample this engine's names give, and how many quantities it explains."""
    read = {q: _per_unit(engine, q, found) for q in QUANTITIES}
    values = {q: (r[1] if r is not None else None) for q, r in read.items()}
    progress = read["progress"]
    score = sum(v is not None for v in values.values())
    if engine.absent_is_idle and (score or any(base_name(n) in found for n in engine.names.extra)):
        for q in COUNTS:  # a gauge not created yet: nothing has run
            if values[q] is None:
                values[q] = {"": 0.0}
        score = max(score, 1)
    totals: dict[str, float | None] = {}
    for q, per in values.items():
        if per is None:
            totals[q] = None
        elif q == "kv_usage":
            totals[q] = max(per.values())
        else:
            totals[q] = math.fsum(per.values())
    names = sorted({u for per in values.values() if per for u in per})
    units: tuple[EngineUnit, ...] = ()
    if engine.unit_label and names != [""]:

        def get(q: str, u: str) -> float | None:
            per = values[q]
            return None if per is None else per.get(u, 0.0)

        units = tuple(
            EngineUnit(
                u,
                get("running", u),
                get("waiting", u),
                get("progress", u),
                engine.asleep(found, u),
                engine.deferred(found, u),
            )
            for u in names
        )
    elif engine.asleep(found, "") or engine.deferred(found, ""):
        units = (
            EngineUnit(
                "",
                totals["running"],
                totals["waiting"],
                totals["progress"],
                engine.asleep(found, ""),
                engine.deferred(found, ""),
            ),
        )
    sample = EngineSample(
        engine.names.flavour,
        totals["running"],
        totals["waiting"],
        totals["kv_usage"],
        totals["progress"],
        totals["generated"],
        engines=units,
        progress_name=progress[0] if progress is not None else "",
    )
    return sample, score
