"""The server's first view and the script's refreshed view must read the same: one markup,
two renderers (exporter/server/web/page.py and static/status.js)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from exporter.config import TargetConfig
from exporter.probes.results import Check, Reason
from exporter.util.faults import FAULTS, FaultKind

from .helpers import chromium, failed, idle_exporter, ok, open_page, serve, wait_js

pytestmark = pytest.mark.browser

SNAPSHOT = """() => ({
    title: document.title,
    counts: [...document.querySelectorAll('b[data-count]')].map(b => b.textContent),
    rows: [...document.querySelectorAll('tr.target')].map(tr => ({
        name: tr.dataset.name,
        state: tr.dataset.state,
        cells: [...tr.children].map(td => td.className + ': ' + td.textContent.replace(/\\s+/g, ' ').trim()),
        lines: [...tr.querySelectorAll('polyline')].map(p => p.getAttribute('points')),
        fails: [...tr.querySelectorAll('line.fail')].map(l => l.getAttribute('x1')),
        dots: [...tr.querySelectorAll('circle')].map(c => c.getAttribute('cx') + ',' + c.getAttribute('cy')),
        labels: [...tr.querySelectorAll('svg')].map(s => s.getAttribute('aria-label')),
        checks: [...tr.querySelectorAll('li.check')].map(li => li.dataset.check + '=' + li.dataset.ok + (li.dataset.stale === 'true' ? '/stale' : '')),
        tips: [...tr.querySelectorAll('[title]:not(time)')].map(e => e.title),
    })),
    transitions: [...document.querySelectorAll('#transitions li')].map(li => li.textContent.replace(/\\s+/g, ' ').trim()),
    own: [document.getElementById('ownfaults').hidden, document.getElementById('ownfaults').textContent],
})"""


async def snapshot(page: Page) -> dict[str, Any]:
    return await page.evaluate(SNAPSHOT)


async def test_server_and_script_render_the_same_page(tmp_path: Path) -> None:
    targets = [
        TargetConfig(name="steady", url="http://127.0.0.1:9", model="org/steady-7b"),
        TargetConfig(name="flaky", url="http://127.0.0.1:10"),
        TargetConfig(name="dead", url="http://127.0.0.1:11"),
        TargetConfig(name="fresh", url="http://127.0.0.1:12"),
        TargetConfig(name="boot", url="http://127.0.0.1:13"),
        TargetConfig(name="paused", url="http://127.0.0.1:14"),
        TargetConfig(name="lax", url="https://127.0.0.1:16", tls={"insecure_skip_verify": True}),
    ]
    async with idle_exporter(targets, tmp_path) as exporter, serve(exporter.app) as base:
        monitor = exporter.monitor
        then = time.time() - 3 * 3600  # hours ago, so "ago" texts cannot drift between views
        monitor.clock = lambda: then
        fresh = monitor.targets["fresh"]  # never probed: unknown since then
        fresh.status = replace(fresh.status, since=then)
        lax = monitor.targets["lax"]  # never probed either
        lax.status = replace(lax.status, since=then)
        for k in range(23):
            for check in Check:
                d, ttft = 0.213 + (k * 37 % 11) / 97, 0.031 + (k * 13 % 7) / 331
                monitor.record("steady", ok(check, then, d, ttft))
                if k % 4 == 1 and check is Check.CHAT:
                    monitor.record("flaky", failed(check, then, "timeout after 30 s"))
                else:
                    monitor.record("flaky", ok(check, then, d * 2, ttft * 3))
                monitor.record("dead", failed(check, then, "connection refused"))
                monitor.record("boot", replace(failed(check, then), reason=Reason.LOADING))
                monitor.record("paused", ok(check, then - 60, d, ttft))
        for _ in range(3):  # down now; its chat and models results are older than that
            monitor.record("paused", failed(Check.HEALTH, then, "[Connect call failed]"))
        # worked on (issue 22): a maintenance beside its honest state, and an exporter problem
        monitor.maintenance.announce("dead", then, 6 * 3600 + 1800, "driver upgrade")
        FAULTS.raised(FaultKind.SECRET_FILE, "secret:/k", "target steady: api_key_file /k is empty",
                      file="/k", field="target steady: api_key_file")  # fmt: skip
        async with chromium() as browser:
            server = await open_page(browser, base + "/", js=False)
            scripted = await open_page(browser, base + "/?refresh=0.5")
            await wait_js(scripted.page, "() => Number(document.body.dataset.renders) >= 1")
            first, second = await snapshot(server.page), await snapshot(scripted.page)
            assert len(first["rows"]) == 7 and first["rows"][0]["state"] == "down"
            lax = next(r for r in second["rows"] if r["name"] == "lax")
            assert "TLS certificate NOT verified" in " ".join(lax["cells"])  # the script's too
            checks = [c for r in first["rows"] for c in r["checks"]]
            assert "chat=wait" in checks and "chat=true/stale" in checks, checks
            assert any(r["fails"] and r["lines"] for r in first["rows"])  # flaky: both kinds
            assert first == second
            assert server.errors == [] and scripted.errors == []
            dead = next(r for r in first["rows"] if r["name"] == "dead")
            assert "in maintenance" in " ".join(dead["cells"]) and "driver upgrade" in str(dead)
            assert first["own"] == [False, "The exporter's own problem, not a target's: "
                                    "target steady: api_key_file /k is empty"]  # fmt: skip
        FAULTS.cleared("secret:/k")
