"""Turning results into the printed table, the goals verdicts and the BENCHMARKS.md section.
Pure functions over the results dict (see bench.scale for its shape)."""

from __future__ import annotations

from typing import Any

__all__ = ["goals", "markdown", "table"]

GOAL_CPU_RATIO = 0.5
GOAL_RENDER_MS_1000 = 50.0
GOAL_LAG_P99_MS = 5.0
GOAL_RSS_5000 = 150.0
GOAL_RATE_SHARDS = 2  # issue 16: 10,000 targets with --shards 2 ...
GOAL_RATE_RATIO = 0.99  # ... at >= 99 % of the configured probe rate


def _f(value: Any, fmt: str = "{:.3g}") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float | int):
        return fmt.format(value)
    return str(value)


def _render_pair(us: dict[str, Any]) -> tuple[Any, Any]:
    """(exposition.render ms, prometheus_client ms); results before the rename had
    render_fast_ms and render_ms (then prometheus_client's)."""
    if "render_exposition_ms" in us or "render_client_ms" in us:
        return us.get("render_exposition_ms"), us.get("render_client_ms")
    return us.get("render_fast_ms"), us.get("render_ms")


def _shards(run: dict[str, Any]) -> int:
    """How many processes our side ran as (results before --shards: one)."""
    return int(run.get("shards") or run["us"].get("shards") or 1)


def _size(run: dict[str, Any]) -> str:
    """N, and the shard count where it is more than one: "10,000 (2 shards)"."""
    k = _shards(run)
    return f"{run['n']:,}" + (f" ({k} shards)" if k > 1 else "")


def _rss(us: dict[str, Any]) -> str:
    """Peak RSS of our process; sharded, the largest process's and the sum over them."""
    peak = _f(us.get("peak_rss_mib"), "{:.0f}")
    if (us.get("shards") or 1) > 1:
        return f"{peak} (sum {_f(us.get('peak_rss_mib_sum'), '{:.0f}')})"
    return peak


def _row(run: dict[str, Any]) -> list[str]:
    us, bb = run["us"], run.get("blackbox")
    ratio = None
    ratio_drv = None
    if bb and us.get("cpu_s_per_1000_probes") and bb.get("cpu_s_per_1000_probes"):
        ratio = us["cpu_s_per_1000_probes"] / bb["cpu_s_per_1000_probes"]
        ratio_drv = us["cpu_s_per_1000_probes"] / bb["cpu_s_per_1000_probes_with_driver"]
    bb = bb or {}
    exposition_ms, client_ms = _render_pair(us)
    wire = us.get("scrape_bytes")
    return [
        _size(run),
        _f(us.get("cpu_s_per_min")),
        _f(bb.get("cpu_s_per_min")),
        _f(us.get("cpu_s_per_1000_probes")),
        _f(bb.get("cpu_s_per_1000_probes")),
        _f(bb.get("cpu_s_per_1000_probes_with_driver")),
        _f(ratio, "{:.2f}"),
        _f(ratio_drv, "{:.2f}"),
        _rss(us),
        _f(bb.get("peak_rss_mib"), "{:.0f}"),
        f"{_f(exposition_ms, '{:.0f}')}/{_f(us.get('render_join_ms'), '{:.0f}')}/"
        f"{_f(client_ms, '{:.0f}')}",
        _f(us.get("scrape_ms", {}).get("max"), "{:.1f}"),
        f"{_f((us.get('metrics_bytes') or 0) / 1024, '{:.0f}')}/"
        f"{_f(None if wire is None else wire / 1024, '{:.0f}')}",
        f"{_f(us.get('loop_lag_ms', {}).get('p50'), '{:.1f}')}/"
        f"{_f(us.get('loop_lag_ms', {}).get('p99'), '{:.1f}')}/"
        f"{_f(us.get('loop_lag_ms', {}).get('max'), '{:.0f}')}",
        f"{_f(us.get('probes_per_s'), '{:.1f}')}/{_f(bb.get('probes_per_s'), '{:.1f}')}"
        f" of {_f(us.get('configured_per_s'), '{:.1f}')}",
        f"{_f(us.get('timing_error_ms', {}).get('p50'), '{:.2f}')}/"
        f"{_f(us.get('timing_error_ms', {}).get('p99'), '{:.2f}')}",
        f"{_f(bb.get('timing_error_ms', {}).get('p50'), '{:.2f}')}/"
        f"{_f(bb.get('timing_error_ms', {}).get('p99'), '{:.2f}')}",
    ]


HEADERS = [
    "N",
    "CPU s/min us",
    "CPU s/min bb",
    "CPU s/1k probes us",
    "CPU s/1k bb",
    "CPU s/1k bb+driver",
    "ratio us/bb",
    "ratio us/(bb+driver)",
    "peak RSS MiB us",
    "peak RSS MiB bb",
    "/metrics loop ms per scrape/longest piece/prometheus_client",
    "scrape ms max",
    "/metrics KiB text/wire",
    "loop lag ms p50/p99/max",
    "probes/s us/bb of configured",
    "timing err ms us p50/p99",
    "timing err ms bb p50/p99",
]


def rows(results: dict[str, Any]) -> list[list[str]]:
    return [_row(r) for r in results["runs"]]


def table(results: dict[str, Any]) -> str:
    """A plain-text table for the terminal."""
    body = rows(results)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(HEADERS)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(HEADERS, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def _run(results: dict[str, Any], n: int) -> dict[str, Any] | None:
    return next((r for r in results["runs"] if r["n"] == n), None)


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of issue 16 with the measured figure and met / not met / not measured."""
    out: list[dict[str, Any]] = []
    runs = [r for r in results["runs"] if r.get("blackbox")]
    ratios = [
        (r["n"], r["us"]["cpu_s_per_1000_probes"] / r["blackbox"]["cpu_s_per_1000_probes"])
        for r in runs
        if r["us"].get("cpu_s_per_1000_probes") and r["blackbox"].get("cpu_s_per_1000_probes")
    ]
    out.append(
        {
            "goal": f"CPU per probe <= {GOAL_CPU_RATIO}x blackbox_exporter's, every N",
            "measured": ", ".join(f"{r:.2f}x at {n:,}" for n, r in ratios) or None,
            "met": all(r <= GOAL_CPU_RATIO for _, r in ratios) if ratios else None,
        }
    )
    for n in (1000, 5000):
        run = _run(results, n)
        us = (run or {}).get("us", {}).get("timing_error_ms", {}).get("p99")
        bb = ((run or {}).get("blackbox") or {}).get("timing_error_ms", {}).get("p99")
        out.append(
            {
                "goal": f"timing error p99 <= blackbox_exporter's at {n:,} targets",
                "measured": None if us is None or bb is None else f"{us:.2f} vs {bb:.2f} ms",
                "met": None if us is None or bb is None else us <= bb,
            }
        )
    if results["plan"].get("profile") == "fast":
        run = _run(results, 100)
        lag = (run or {}).get("us", {}).get("loop_lag_ms", {}).get("p99")
        out.append(
            {
                "goal": f"event-loop lag p99 <= {GOAL_LAG_P99_MS:g} ms, fast profile, 100 targets",
                "measured": None if lag is None else f"p99 {lag:.2f} ms",
                "met": None if lag is None else lag <= GOAL_LAG_P99_MS,
            }
        )
        return out
    run = _run(results, 1000)
    lag = (run or {}).get("us", {}).get("loop_lag_ms", {}).get("p99")
    out.append(
        {
            "goal": f"event-loop lag p99 <= {GOAL_LAG_P99_MS:g} ms at 1,000 targets, 15 s scrapes",
            "measured": None if lag is None else f"p99 {lag:.2f} ms",
            "met": None if lag is None else lag <= GOAL_LAG_P99_MS,
        }
    )
    render = (run or {}).get("us", {}).get("render_ms")
    piece = (run or {}).get("us", {}).get("render_join_ms")
    out.append(
        {
            "goal": f"/metrics for 1,000 targets <= {GOAL_RENDER_MS_1000:g} ms of loop time",
            "measured": None
            if render is None
            else f"{render:.1f} ms (every target changed), longest piece {piece or 0:.1f} ms",
            "met": None if render is None else render <= GOAL_RENDER_MS_1000,
        }
    )
    run = _run(results, 5000)
    if run and _shards(run) == 1:
        us = run["us"]
        share = us["probes_per_s"] / us["configured_per_s"] if us.get("configured_per_s") else 0
        out.append(
            {
                "goal": f"5,000 targets in one process at >= {GOAL_RATE_RATIO:.0%} of the rate",
                "measured": f"{share:.1%}",
                "met": share >= GOAL_RATE_RATIO,
            }
        )
        out.append(
            {
                "goal": f"peak RSS <= {GOAL_RSS_5000:g} MiB at 5,000 targets",
                "measured": f"{us.get('peak_rss_mib')} MiB",
                "met": (us.get("peak_rss_mib") or 1e9) <= GOAL_RSS_5000,
            }
        )
    out.append(_rate_goal(results))
    return out


def _rate_goal(results: dict[str, Any]) -> dict[str, Any]:
    """Issue 16: 10,000 targets on this machine with --shards 2 (or fewer) at >= 99 % of the
    configured probe rate; the rate and the configured rate are summed over the processes."""
    run = _run(results, 10000)
    us = run["us"] if run else {}
    rate, configured = us.get("probes_per_s"), us.get("configured_per_s")
    goal = (
        f"10,000 targets with --shards {GOAL_RATE_SHARDS} at >= {GOAL_RATE_RATIO:.0%} "
        "of the configured probe rate"
    )
    if run is None or rate is None or not configured:
        return {"goal": goal, "measured": None, "met": None}
    k = _shards(run)
    share = rate / configured
    return {
        "goal": goal,
        "measured": f"{rate:.1f} of {configured:.1f} probes/s ({share:.1%}), "
        f"{k} shard{'s' if k > 1 else ''}",
        "met": share >= GOAL_RATE_RATIO and k <= GOAL_RATE_SHARDS,
    }


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "NOT met")


def _sharded_prose(results: dict[str, Any]) -> list[str]:
    """What a run with --shards measured, said once above the table (nothing when unsharded)."""
    counts = sorted({_shards(r) for r in results["runs"] if _shards(r) > 1})
    if not counts:
        return []
    k = "/".join(str(c) for c in counts)
    return [
        f"Rows marked (K shards): llm-heartbeat as K = {k} processes, each given every target and "
        "`sharding: {index: i, count: K}` (each probes its hash share, docs/scaling.md), all "
        "measured over the same window; probes/s, the configured rate, CPU and cores are summed "
        "over the processes (CPU per probe = total CPU / total probes), loop lag and timing "
        "error merged over their samples; peak RSS is the largest process's (sum in brackets), "
        "/metrics figures the largest process's.",
    ]


def markdown(results: dict[str, Any]) -> str:
    """The generated part of BENCHMARKS.md: machine, settings, table, goals."""
    m = results["machine"]
    p = results["plan"]
    lines = [
        f"Run {results['started']} ({'quick' if p['quick'] else 'full'} mode).",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}, {m['blackbox_exporter']}, "
        f"nginx {m['nginx']}, httpx {m['httpx']}, "
        f"aiohttp {m['aiohttp']}, prometheus-client {m['prometheus_client']}.",
        "",
        f"Each N: N nginx targets plus {p['delay_targets']} targets answering after "
        f"{p['delay'] * 1000:g} ms, all three checks (health, models, streaming chat) every "
        f"{p['interval']:g} s, at most {p['max_concurrency']} probes at once; "
        f"{p['warmup']:g} s warm-up, then a {p['window']:g} s window, scraped every 15 s with "
        "Prometheus's Accept and Accept-Encoding headers. /metrics served by "
        + (
            "prometheus_client's encoder (`--metrics client`, the app's handler before "
            "`exporter.metrics.exposition.render`)."
            if p.get("metrics") == "client"
            else "the exporter's own app, as shipped (`exporter.metrics.exposition.render`, gzip level 1)."
        ),
        *_sharded_prose(results),
        "Render columns: the event-loop time one scrape costs with every target changed since "
        "the last one (the collector's refresh, done in 2 ms slices that yield when served, plus "
        "`exposition.render`) / the longest piece that holds the loop unsliced (the render's "
        "join) / prometheus_client's encoder on the same registry, at the end of the window; "
        "/metrics size as text / as sent gzipped.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---:|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    lines += ["", "| goal | measured | verdict |", "|---|---|---|"]
    lines += [
        f"| {g['goal']} | {g['measured'] or 'n/a'} | {_verdict(g['met'])} |" for g in goals(results)
    ]
    if results.get("transport"):
        lines += [
            "",
            "Transport micro-benchmark (client CPU per request, "
            f"{results['transport']['concurrency']} concurrent connections, keep-alive, "
            "POST of the chat request to nginx):",
            "",
            "| client | CPU ms/request | requests/s |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {r['client']} | {r['cpu_ms_per_request']:.3f} | {r['requests_per_s']:.0f} |"
            for r in results["transport"]["clients"]
        ]
    return "\n".join(lines)
