"""The status page for servers that are not vLLM (issue 27): a /health the server does not offer
shows as "not offered", neither a pass nor a failure, and a rate-limited target says "rate
limited", in the server's first view and in the script's refreshed one alike."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from exporter.config import TargetConfig
from exporter.probes.results import Check, Reason

from .helpers import chromium, failed, idle_exporter, ok, open_page, serve, wait_js

pytestmark = pytest.mark.browser

SNAPSHOT = """() => [...document.querySelectorAll('tr.target')].map(tr => ({
    name: tr.dataset.name,
    state: tr.dataset.state,
    note: (tr.querySelector('.note') || {}).textContent || '',
    checks: Object.fromEntries([...tr.querySelectorAll('li.check')].map(li => [
        li.dataset.check,
        li.dataset.ok + ' ' + li.querySelector('.cval').textContent,
    ])),
}))"""


async def test_not_offered_and_rate_limited_read_as_such(tmp_path: Path) -> None:
    targets = [
        TargetConfig(name="nohealth", url="http://127.0.0.1:9"),
        TargetConfig(name="throttled", url="http://127.0.0.1:10"),
    ]
    async with idle_exporter(targets, tmp_path) as exporter, serve(exporter.app) as base:
        monitor = exporter.monitor
        then = time.time() - 3600
        monitor.clock = lambda: then
        not_offered = replace(
            failed(Check.HEALTH, then, "HTTP 404 on /health: the server has no such endpoint"),
            reason=Reason.NOT_OFFERED,
            status_code=404,
        )
        limited = replace(
            failed(Check.CHAT, then, "HTTP 429 rate_limit_error: Rate limit exceeded"),
            reason=Reason.RATE_LIMITED,
            status_code=429,
            retry_after=60.0,
        )
        for check in (Check.HEALTH, Check.MODELS, Check.CHAT):
            monitor.record("nohealth", not_offered if check is Check.HEALTH else ok(check, then))
            monitor.record("throttled", ok(check, then))
        monitor.record("throttled", limited)
        assert monitor.targets["nohealth"].status.state.value == "up"
        assert monitor.targets["throttled"].status.reason == "rate_limited"
        async with chromium() as browser:
            server = await open_page(browser, base + "/", js=False)
            scripted = await open_page(browser, base + "/?refresh=0.5")
            await wait_js(scripted.page, "() => Number(document.body.dataset.renders) >= 1")
            first = await server.page.evaluate(SNAPSHOT)
            second = await scripted.page.evaluate(SNAPSHOT)
    rows = {r["name"]: r for r in first}
    assert rows["nohealth"]["state"] == "up"
    assert rows["nohealth"]["checks"]["health"] == "na not offered by this server (HTTP 404)"
    assert rows["throttled"]["state"] == "overloaded"
    assert rows["throttled"]["note"] == "rate limited: busy, not broken"
    assert rows["throttled"]["checks"]["chat"] == "busy rate limited (HTTP 429)"
    assert first == second
