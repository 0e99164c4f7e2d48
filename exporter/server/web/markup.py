"""Small pieces of the page's markup (escaped text, times, sparklines), each written once;
`static/status.js` draws the same pieces for the refreshed view."""

from __future__ import annotations

import time
from html import escape

from exporter.server.web.format import SPARK_HEIGHT, SPARK_WIDTH, fmt_ago, fmt_seconds, sparkline

__all__ = ["ago", "esc", "spark", "stamp"]


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def stamp(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def ago(ts: float | None, now: float, cls: str = "ago") -> str:
    return (
        f'<time class="{cls}" data-ts="{esc(ts or "")}" title="{esc(stamp(ts))}">'
        f"{esc(fmt_ago(ts, now))}</time>"
    )


def spark(series: list[float | None], label: str) -> str:
    sp = sparkline(series)
    values = [v for v in series if v is not None]
    if values:
        label = f"{label}, last {len(series)} probes: {fmt_seconds(min(values))} to {fmt_seconds(max(values))}"
    parts = [
        f'<svg class="spark" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" width="{SPARK_WIDTH}" '
        f'height="{SPARK_HEIGHT}" role="img" aria-label="{esc(label)}"><title>{esc(label)}</title>'
    ]
    for x in sp.fails:
        parts.append(f'<line class="fail" x1="{x:g}" y1="2" x2="{x:g}" y2="{SPARK_HEIGHT - 2}"/>')
    if sp.line:
        parts.append(f'<polyline class="line" points="{sp.points}"/>')
        x, y = sp.line[-1]
        parts.append(f'<circle class="dot" cx="{x:g}" cy="{y:g}" r="2"/>')
    parts.append("</svg>")
    return "".join(parts)
