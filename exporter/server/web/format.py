"""Pure helpers shared by the server-rendered page; `static/status.js` mirrors them so the
first view and the refreshed one read the same."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CHECK_ORDER",
    "SPARK_HEIGHT",
    "SPARK_WIDTH",
    "STATES",
    "STATE_NOTES",
    "Spark",
    "clip",
    "fmt_ago",
    "fmt_seconds",
    "fmt_span",
    "last_latency",
    "last_ttft",
    "latency_series",
    "sort_key",
    "sparkline",
    "ttft_series",
]

# worst first: the page lists targets in this order so problems are at the top; a state not
# listed (from a newer engine) is drawn generically, after these
STATES = ("down", "degraded", "overloaded", "starting", "unknown", "up")
# states that are not failures say so beside their badge
STATE_NOTES = {"overloaded": "busy, not broken", "starting": "loading: expected"}
CHECK_ORDER = ("health", "models", "chat")
SPARK_WIDTH = 120
SPARK_HEIGHT = 28
_PAD = 2.0
CLIP = 240


def clip(text: str, limit: int = CLIP) -> str:
    """Server error text can be long: the page shows its start, the tooltip all of it."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def fmt_seconds(value: float | None) -> str:
    """A probe time: milliseconds below a second, else seconds."""
    if value is None:
        return "\u2013"  # en dash: no value yet
    if value < 0.0005:
        return "<1 ms"  # "0 ms" would read as "no time at all" or as a missing value
    if value < 1:
        return f"{_round(value * 1000)} ms"
    if value < 10:
        return f"{value:.2f} s"
    if value < 100:
        return f"{value:.1f} s"
    return f"{_round(value)} s"


def _round(value: float, digits: int = 0) -> float | int:
    """Half up, like JavaScript's Math.round (Python's round() goes half to even)."""
    scale = 10**digits
    rounded = math.floor(value * scale + 0.5) / scale
    return int(rounded) if digits == 0 else rounded


def fmt_span(seconds: float) -> str:
    """A coarse length of time: '12 s', '3 min', '2 h', '4 d'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def fmt_ago(ts: float | None, now: float) -> str:
    if not ts:
        return "never"
    if now - ts < 1:
        return "just now"
    return f"{fmt_span(now - ts)} ago"


def sort_key(target: Mapping[str, Any]) -> tuple[int, str]:
    state = target.get("state")
    rank = STATES.index(state) if state in STATES else len(STATES)
    return rank, str(target.get("name", ""))


def ttft_series(recent: Iterable[Mapping[str, Any]]) -> list[float | None]:
    """Chat probes' time to first token; None marks a failed probe."""
    out: list[float | None] = []
    for r in recent:
        if r.get("check") != "chat":
            continue
        if not r.get("success"):
            out.append(None)
        elif isinstance(r.get("ttft"), int | float):
            out.append(float(r["ttft"]))
    return out


def latency_series(recent: Iterable[Mapping[str, Any]]) -> list[float | None]:
    """End-to-end time of the chat probes (all probes when chat is off); None marks a failure."""
    items = list(recent)
    chat = [r for r in items if r.get("check") == "chat"]
    out: list[float | None] = []
    for r in chat or items:
        ok = r.get("success") and isinstance(r.get("duration"), int | float)
        out.append(float(r["duration"]) if ok else None)
    return out


def _newest(items: list[Mapping[str, Any]], key: str) -> tuple[float | None, float | None]:
    for r in reversed(items):
        value, ts = r.get(key), r.get("time")
        if r.get("success") and isinstance(value, int | float):
            return float(value), float(ts) if isinstance(ts, int | float) else None
    return None, None


def last_ttft(recent: Iterable[Mapping[str, Any]]) -> tuple[float | None, float | None]:
    """The TTFT headline and when it was measured: the newest chat probe that had one."""
    return _newest([r for r in recent if r.get("check") == "chat"], "ttft")


def last_latency(recent: Iterable[Mapping[str, Any]]) -> tuple[float | None, float | None]:
    """The latency headline (as `latency_series`: chat probes, all when chat is off) and when."""
    items = list(recent)
    chat = [r for r in items if r.get("check") == "chat"]
    return _newest(chat or items, "duration")


class Spark:
    """The geometry of one sparkline in a SPARK_WIDTH x SPARK_HEIGHT box."""

    def __init__(self, line: list[tuple[float, float]], fails: list[float]) -> None:
        self.line = line
        self.fails = fails

    @property
    def points(self) -> str:
        return " ".join(f"{x:g},{y:g}" for x, y in self.line)


def sparkline(series: list[float | None]) -> Spark:
    """Successful values as a line from zero to the maximum (so heights compare); failures as
    x positions for red ticks. Oldest left, newest right."""
    n = len(series)
    values = [v for v in series if v is not None]
    top = max(values) if values and max(values) > 0 else 1.0
    step = (SPARK_WIDTH - 2 * _PAD) / (n - 1) if n > 1 else 0.0
    line: list[tuple[float, float]] = []
    fails: list[float] = []
    for i, v in enumerate(series):
        x = _round(_PAD + i * step if n > 1 else SPARK_WIDTH - _PAD, 1)
        if v is None:
            fails.append(x)
        else:
            y = _round(SPARK_HEIGHT - _PAD - v / top * (SPARK_HEIGHT - 2 * _PAD), 1)
            line.append((x, y))
    return Spark(line, fails)
