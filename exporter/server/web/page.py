"""The first view of the status page, rendered on the server from `targets_view` (works
without JavaScript). Everything that comes from a target is escaped here, in one place.

The markup is the contract with `static/status.js`, which adopts these rows and updates them:
change one, change the other."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from exporter.server.web.format import (
    CHECK_ORDER,
    STATE_NOTES,
    STATES,
    clip,
    fmt_seconds,
    fmt_span,
    last_latency,
    last_ttft,
    latency_series,
    sort_key,
    ttft_series,
)
from exporter.server.web.markup import ago as _ago
from exporter.server.web.markup import esc as _e
from exporter.server.web.markup import spark as _spark
from exporter.server.web.markup import stamp as _stamp

__all__ = ["render_page"]

View = Mapping[str, Any]


def _check(name: str, result: Mapping[str, Any] | None, now: float, state: str) -> str:
    """One check: a mark, a short value (a time, or why it failed in a few words), its age.
    The raw detail is in the tooltip. A failure while `starting` is expected ("wait"), and a
    result older than the state says it was not re-checked since."""
    if result is None:
        return (
            f'<li class="check" data-check="{_e(name)}" data-ok="none">'
            f'<span class="mark" aria-hidden="true">·</span> <span class="cname">{_e(name)}</span> '
            f'<span class="cval muted">not yet</span></li>'
        )
    ok = (
        "true"
        if result.get("success")
        else "na"  # not offered: the server has no such endpoint (neither pass nor fail)
        if result.get("offered") is False
        else "busy"
        if result.get("reason") == "rate_limited"
        else "wait"
        if state == "starting"
        else "false"
    )
    if ok == "true":
        value = fmt_seconds(result.get("duration_seconds"))
        if result.get("tokens_per_second"):
            value += f" · {result['tokens_per_second']:.0f} tok/s"
    else:
        value = str(result.get("summary") or result.get("reason") or "failed")
    tip = " · ".join(str(x) for x in (result.get("reason"), result.get("detail")) if x)
    stale = bool(result.get("stale"))
    age = _ago(result.get("timestamp"), now, "ago muted")
    if stale:
        age = f'<span class="stale muted">not re-checked since {_e(state)}, {age}</span>'
    return (
        f'<li class="check" data-check="{_e(name)}" data-ok="{ok}" '
        f'data-stale="{"true" if stale else "false"}" title="{_e(tip)}">'
        f'<span class="mark" aria-hidden="true">{_MARKS[ok]}</span> '
        f'<span class="cname">{_e(name)}</span> <span class="cval">{_e(value)}</span> {age}</li>'
    )


_MARKS = {"true": "✓", "false": "✗", "wait": "…", "na": "-", "busy": "…"}


def _number(value: object) -> float | None:
    """A time from the history file, which a person may have edited: a number or nothing."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _transition(t: Mapping[str, Any], now: float, with_target: bool) -> str:
    who = f'<span class="tname">{_e(t.get("target"))}</span> ' if with_target else ""
    text = str(t.get("summary") or t.get("reason") or "")
    tip = " · ".join(str(x) for x in (t.get("reason"), t.get("detail")) if x)
    return (
        f"<li>{_ago(_number(t.get('time')), now)} {who}"
        f'<span class="word s-{_e(t.get("from"))}">{_e(t.get("from"))}</span> → '
        f'<span class="word s-{_e(t.get("to"))}">{_e(t.get("to"))}</span>'
        + (f' <span class="why muted" title="{_e(tip)}">{_e(clip(text))}</span>' if text else "")
        + "</li>"
    )


def _note(state: str, reason: object) -> str:
    """The few words after a state's badge (status.js says the same)."""
    if state == "overloaded" and reason == "rate_limited":
        return "rate limited: busy, not broken"
    return STATE_NOTES[state]


def render_row(t: View, now: float) -> str:
    """One target; `static/status.js` builds the same cells (`fillRow`)."""
    checks = t.get("checks") or {}
    names = [c for c in CHECK_ORDER if c in (t.get("consecutive_failures") or checks)]
    recent = t.get("recent") or []
    state = str(t.get("state"))
    reason = ""
    if state != "up" and (t.get("reason") or t.get("detail")):
        raw = " · ".join(str(x) for x in (t.get("reason"), t.get("detail")) if x)
        reason = (
            f'<details class="reason"><summary>{_e(t.get("summary") or t.get("reason"))}</summary>'
            f'<div class="rdetail">{_e(clip(raw))}</div></details>'
        )
    grace = ""
    if t.get("grace_until") and t["grace_until"] > now:
        grace = (
            f'<div class="grace muted">recovery grace, <time class="left" '
            f'data-ts="{_e(t["grace_until"])}" title="{_e(_stamp(t["grace_until"]))}">'
            f"{_e(fmt_span(t['grace_until'] - now))}</time> left</div>"
        )
    m = t.get("maintenance")
    if isinstance(m, dict) and (m.get("end") or 0) > now:  # status.js builds the same
        why = f": {clip(str(m['reason']))}" if m.get("reason") else ""
        grace = (
            f'<div class="maint">in maintenance, <time class="left" data-ts="{_e(m["end"])}" '
            f'title="{_e(_stamp(m["end"]))}">{_e(fmt_span(m["end"] - now))}</time> left{_e(why)}</div>'
        ) + grace
    transitions = list(t.get("transitions") or [])
    history = ""
    if transitions:
        items = "".join(_transition(x, now, False) for x in reversed(transitions))
        history = (
            f'<details class="hist"><summary>{len(transitions)} transition'
            f'{"s" if len(transitions) != 1 else ""}</summary><ol class="tlist">{items}</ol></details>'
        )
    return (
        f'<tr class="target" data-name="{_e(t.get("name"))}" data-state="{_e(t.get("state"))}">'
        f'<td class="c-state"><span class="badge">{_e(state)}</span> '
        + (
            f'<span class="note">{_e(_note(state, t.get("reason")))}</span>'
            if state in STATE_NOTES
            else ""
        )
        + f'<span class="since muted">for <time class="span" data-ts="{_e(t.get("since") or "")}" '
        f'title="{_e(_stamp(t.get("since")))}">{_e(fmt_span(now - (t.get("since") or now)))}</time></span></td>'
        f'<td class="c-target"><div class="name">{_e(t.get("name"))}</div>'
        f'<div class="model">{_e(t.get("model") or "model not known yet")}</div>'
        f'<div class="url muted">{_e(t.get("url"))}</div>'
        + (f'<div class="tlswarn">{_e(t["tls_warning"])}</div>' if t.get("tls_warning") else "")
        + reason
        + grace
        + history
        + "</td>"
        f'<td class="c-checks"><ul class="checks">{"".join(_check(c, checks.get(c), now, state) for c in names)}</ul></td>'
        + _metric(
            "c-ttft", "TTFT", last_ttft(recent), now, ttft_series(recent), "time to first token"
        )
        + _metric(
            "c-lat", "Latency", last_latency(recent), now, latency_series(recent), "probe latency"
        )
        + "</tr>"
    )


def _metric(
    cls: str,
    label: str,
    newest: tuple[float | None, float | None],
    now: float,
    series: list[float | None],
    what: str,
) -> str:
    """A headline number with its age (it may be old: a paused check), then the sparkline."""
    value, ts = newest
    age = f" {_ago(ts, now, 'ago muted')}" if value is not None and ts else ""
    return (
        f'<td class="{cls}"><span class="label">{label}</span> '
        f'<span class="val">{_e(fmt_seconds(value))}{age}</span>{_spark(series, what)}</td>'
    )


def _summary(targets: list[View]) -> str:
    counts = Counter(t.get("state") for t in targets)
    parts = [
        f'<button type="button" class="count" data-filter="" aria-pressed="true">'
        f'<b data-count="all">{len(targets)}</b> target{"s" if len(targets) != 1 else ""}</button>'
    ]
    for state in STATES:
        parts.append(
            f'<button type="button" class="count s-{state}" data-filter="{state}" aria-pressed="false">'
            f'<b data-count="{state}">{counts.get(state, 0)}</b> {state}</button>'
        )
    return "".join(parts)


def own_problems_text(problems: list[Mapping[str, Any]]) -> str:
    """The banner's words for the exporter's own problems (`static/status.js` says the same)."""
    if not problems:
        return ""
    shown = "; ".join(str(p.get("detail") or p.get("kind")) for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"The exporter's own problem, not a target's: {shown}{more}"


def page_title(targets: list[View]) -> str:
    counts = Counter(t.get("state") for t in targets)
    bad = [f"{counts[s]} {s}" for s in STATES[:4] if counts.get(s)]
    if not targets:
        return "llm-heartbeat: no targets"
    if bad:
        return "llm-heartbeat: " + ", ".join(bad)
    return f"llm-heartbeat: {counts.get('up', 0)}/{len(targets)} up"


def render_page(
    view: View, *, refresh: float, query: str, assets: Mapping[str, str], now: float | None = None
) -> str:
    """The whole page. `assets` maps a static file name to its versioned relative URL."""
    now = view.get("generated_at", time.time()) if now is None else now
    targets = sorted(view.get("targets") or [], key=sort_key)
    rows = "".join(render_row(t, now) for t in targets)
    own = own_problems_text(list(view.get("exporter_problems") or []))
    overall = list(view.get("transitions") or [])[-20:]
    trans = "".join(_transition(x, now, True) for x in reversed(overall))
    empty = "" if not targets else " hidden"
    table = " hidden" if not targets else ""
    refresh_meta = (
        f'<noscript><meta http-equiv="refresh" content="{refresh:g}"></noscript>' if refresh else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{_e(page_title(targets))}</title>
<link rel="icon" type="image/svg+xml" href="{_e(assets["favicon.svg"])}">
<link rel="stylesheet" href="{_e(assets["status.css"])}">
{refresh_meta}
<script src="{_e(assets["status.js"])}" defer></script>
</head>
<body data-refresh="{refresh:g}" data-generated-at="{_e(view.get("generated_at", now))}" data-renders="0">
<header>
<div class="top"><h1>llm-heartbeat</h1>
<p class="updated muted">updated <time id="updated" class="ago" data-ts="{_e(view.get("generated_at", now))}">just now</time>{f" · every {refresh:g} s" if refresh else ""}</p></div>
<p id="problem" class="banner" role="alert" hidden></p>
<p id="ownfaults" class="banner own" role="status"{"" if own else " hidden"}>{_e(own)}</p>
<nav id="summary" aria-label="Targets by state">{_summary(targets)}</nav>
<input id="filter" type="search" value="{_e(query)}" placeholder="Filter by name, model or URL" aria-label="Filter targets" autocomplete="off">
</header>
<main>
<section id="empty" class="empty"{empty}>
<h2>No targets</h2>
<p>This exporter has no target to probe. Add one under <code>targets:</code> in the config file
(<code>- name: my-model</code>, <code>url: http://vllm:8000</code>) and reload it with
<code>POST /-/reload</code> or a restart.</p>
</section>
<p id="nomatch" class="empty" hidden>No target matches the filter.</p>
<table id="targets"{table}>
<thead><tr><th class="c-state">State</th><th class="c-target">Target</th><th class="c-checks">Last checks</th><th class="c-ttft">TTFT</th><th class="c-lat">Latency</th></tr></thead>
<tbody id="rows">{rows}</tbody>
</table>
<section class="history">
<h2>Recent transitions</h2>
<ol id="transitions" class="tlist">{trans}</ol>
<p id="notrans" class="muted"{" hidden" if overall else ""}>No state changes yet.</p>
</section>
</main>
<footer class="muted">JSON: <a href="api/v1/targets">api/v1/targets</a> · <a href="metrics">metrics</a></footer>
</body>
</html>
"""
