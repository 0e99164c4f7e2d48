"""The status page over HTTP without a browser: headers, assets, escaping, and the pure
helpers that the page and the script share."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from exporter.config import Settings, TargetConfig
from exporter.probes.results import Check
from exporter.runtime import Exporter
from exporter.server.web.format import (
    SPARK_HEIGHT,
    SPARK_WIDTH,
    clip,
    fmt_ago,
    fmt_seconds,
    fmt_span,
    latency_series,
    sort_key,
    sparkline,
    ttft_series,
)
from exporter.server.web.page import render_page
from exporter.server.web.routes import parse_refresh
from exporter.server.words import check_summary, state_summary

from .helpers import failed, ok

ASSETS = {n: f"static/{n}?v=1" for n in ("status.js", "status.css", "favicon.svg")}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real exporter app (status routes included), driven in-process."""
    targets = [TargetConfig(name="qwen", url="http://user:secret@127.0.0.1:9")]
    ex = Exporter(Settings(targets=targets, history_file=tmp_path / "h.jsonl"))
    transport = httpx.ASGITransport(app=ex.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as c:
        yield c
    await ex.stop()


async def test_page_headers_forbid_inline_and_foreign_sources(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "img-src", "connect-src"):
        assert csp[directive] == "'self'", directive
    assert csp["frame-ancestors"] == "'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    html = r.text
    # nothing inline that a CSP without 'unsafe-inline' would block, nothing from elsewhere
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html and "<style" not in html
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(not re.match(r"(?:[a-z]+:)?//", ref) for ref in refs), refs
    assert "secret" not in html  # the URL is shown without its password


async def test_assets_are_served_versioned_and_cacheable(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    for name, media in (
        ("status.js", "text/javascript"),
        ("status.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        url = re.search(rf'"(static/{re.escape(name)}\?v=[0-9a-f]+)"', html)
        assert url, name
        r = await client.get("/" + url.group(1))
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert url.group(1).endswith(r.headers["etag"].strip('"'))
        again = await client.get("/" + url.group(1), headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304
    assert (await client.get("/static/nope.js")).status_code == 404
    assert (await client.get("/static/..%2Froutes.py")).status_code == 404
    assert (await client.get("/api/v1/targets")).json()["targets"][0]["name"] == "qwen"


async def test_refresh_parameter(client: httpx.AsyncClient) -> None:
    assert parse_refresh(None) == 5.0 and parse_refresh("") == 5.0
    assert parse_refresh("2") == 2.0 and parse_refresh("0.1") == 0.5
    assert parse_refresh("0") == 0.0 and parse_refresh("-3") == 0.0
    assert parse_refresh("nan") == 5.0 and parse_refresh("x") == 5.0
    assert parse_refresh("1e9") == 3600.0
    assert 'data-refresh="2"' in (await client.get("/?refresh=2")).text
    off = (await client.get("/?refresh=0")).text
    assert 'data-refresh="0"' in off and 'http-equiv="refresh"' not in off


def test_untrusted_text_is_escaped_in_the_first_view() -> None:
    now = time.time()
    bad = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    view = {
        "generated_at": now,
        "targets": [
            {
                "name": bad,
                "url": bad,
                "model": bad,
                "state": bad,
                "since": now,
                "reason": bad,
                "detail": bad,
                "checks": {
                    "health": {"success": False, "timestamp": now, "reason": bad, "detail": bad}
                },
                "consecutive_failures": {"health": 3},
                "recent": [],
                "transitions": [{"time": now, "target": bad, "from": bad, "to": bad}],
            }
        ],
        "transitions": [{"time": now, "target": bad, "from": bad, "to": bad, "detail": bad}],
    }
    html = render_page(view, refresh=5, query=bad, assets=ASSETS)
    assert "<img" not in html
    assert html.count("<script") == 1  # ours, with src
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_formatting() -> None:
    assert fmt_seconds(None) == "\u2013"
    assert fmt_seconds(0.0125) == "13 ms"  # half up, like the script's Math.round
    assert fmt_seconds(0.999) == "999 ms"
    assert fmt_seconds(0.0003) == "<1 ms" and fmt_seconds(0.0) == "<1 ms"  # never "0 ms"
    assert fmt_seconds(0.0005) == "1 ms"
    assert fmt_seconds(1.5) == "1.50 s" and fmt_seconds(12.34) == "12.3 s"
    assert fmt_seconds(250) == "250 s"
    assert [fmt_span(s) for s in (0, 59, 60, 3599, 3600, 86400 * 3)] == [
        "0 s",
        "59 s",
        "1 min",
        "59 min",
        "1 h",
        "3 d",
    ]
    assert fmt_ago(None, 10) == "never" and fmt_ago(9.5, 10) == "just now"
    assert fmt_ago(0.5, 130) == "2 min ago"
    assert fmt_ago(100, 90) == "just now"  # a clock a little behind is not "in the future"
    assert clip("abc", 5) == "abc" and clip("abcdef", 5) == "abcd\u2026"
    assert sorted(
        [{"name": "b", "state": "up"}, {"name": "a", "state": "down"}, {"name": "c", "state": "x"}],
        key=sort_key,
    ) == [{"name": "a", "state": "down"}, {"name": "b", "state": "up"}, {"name": "c", "state": "x"}]


def test_series_and_sparkline_geometry(tmp_path: Path) -> None:
    target = TargetConfig(name="a", url="http://127.0.0.1:9")
    ex = Exporter(Settings(targets=[target], history_file=tmp_path / "h.jsonl"))
    now = time.time()
    ex.monitor.record("a", ok(Check.HEALTH, now, 0.01))
    ex.monitor.record("a", ok(Check.CHAT, now, 0.4, 0.1))
    ex.monitor.record("a", failed(Check.CHAT, now))
    ex.monitor.record("a", ok(Check.CHAT, now, 0.2, 0.05))
    recent = list(ex.monitor.targets["a"].recent)
    ex.monitor.history.close()
    assert ttft_series(recent) == [0.1, None, 0.05]
    assert latency_series(recent) == [0.4, None, 0.2]  # chat only when chat runs
    assert latency_series(recent[:1]) == [0.01]

    sp = sparkline([0.4, None, 0.2])
    assert sp.fails == [60.0]
    (x0, y0), (x2, y2) = sp.line
    assert (x0, x2) == (2.0, SPARK_WIDTH - 2.0)
    assert y0 == 2.0  # the maximum touches the top
    assert y2 == pytest.approx(SPARK_HEIGHT / 2, abs=0.1)  # half of it is half way: zero-based
    assert sparkline([]).line == [] and sparkline([None]).fails == [SPARK_WIDTH - 2.0]
    assert sparkline([0.0, 0.0]).points == "2,26 118,26"


def test_static_files_ship_in_the_wheel(tmp_path: Path) -> None:
    """pyproject's package-data must carry exporter/server/web/static into the wheel: setuptools'
    build_py (the step that fills a wheel) on a copy of the project, so the tree stays clean."""
    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "src"
    shutil.copytree(
        root / "exporter", src / "exporter", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "-d",
            str(tmp_path / "lib"),
        ],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    built = tmp_path / "lib" / "exporter" / "server" / "web" / "static"
    for name in ("status.js", "status.css", "favicon.svg"):
        assert (built / name).read_bytes() == (
            root / "exporter/server/web/static" / name
        ).read_bytes()


async def test_transitions_from_the_history_file_are_shown(tmp_path: Path) -> None:
    """The page lists transitions from before a restart; an edited record does not break it."""
    history = tmp_path / "h.jsonl"
    history.write_text(
        '{"time": 1700000000, "target": "qwen", "from": "up", "to": "down", "reason": "r0"}\n'
        '{"time": "yesterday", "target": "qwen", "from": {}, "to": null}\n'
    )
    targets = [TargetConfig(name="qwen", url="http://127.0.0.1:9")]
    ex = Exporter(Settings(targets=targets, history_file=history))
    transport = httpx.ASGITransport(app=ex.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as c:
        r = await c.get("/")
    await ex.stop()
    assert r.status_code == 200
    assert "r0" in r.text and "2023-11-14 22:13:20 UTC" in r.text
    assert ">never</time>" in r.text


def test_short_words_for_reasons() -> None:
    cases = {
        ("connect_error", "ClientConnectorError: [Connect call failed ('h', 1)]", None): (
            "connection refused"
        ),
        ("connect_error", "ClientConnectorDNSError: Name or service not known", None): (
            "host not found"
        ),
        ("connect_error", "", None): "cannot connect",
        ("timeout", "deadline exceeded", 200): "answer stalled after HTTP 200",
        ("timeout", "deadline exceeded", None): "no answer in time",
        ("server_error", "CUDA error", 500): "server error (HTTP 500)",
        ("overloaded_queue", "", None): "overloaded queue",  # a code this version lacks
    }
    for (reason, detail, status), words in cases.items():
        assert check_summary(reason, detail, status) == words
    assert len(cases) == 7
    assert state_summary("health_connect_error", "health: Connect call failed") == (
        "health: connection refused"
    )
    assert state_summary("chat_timeout", "chat: deadline exceeded") == "chat: no answer in time"
    assert state_summary("recovery_grace", "") == "restarted: waiting for it to come back"
    assert state_summary("<b>x</b>", "") == "<b>x</b>"  # not a code: shown as it is (escaped)
