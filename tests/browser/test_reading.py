"""What a person reads on the status page (issue 17 item 7, issue 12 item 3), in real Chromium,
from the server's first view and from the script's refreshed one alike: short reasons with
the detail on demand, numbers that read right, columns that stay put, stale results marked as
stale, `starting` drawn as expected, and states this page does not know yet."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from playwright.async_api import Page

from exporter.config import TargetConfig
from exporter.probes.results import Check, ProbeResult, Reason

from .helpers import chromium, failed, idle_exporter, ok, open_page, serve, wait_js
from .test_status_page import is_red, rgb

pytestmark = pytest.mark.browser

PHASES = ("server-rendered", "refreshed by the script")
AIOHTTP = (
    "ClientConnectorError: Cannot connect to host 127.0.0.1:9 ssl:default "
    "[Connect call failed ('127.0.0.1', 9)]"
)


async def pages(browser, base: str):  # type: ignore[no-untyped-def]
    """The same view twice: as the server rendered it (no script) and as the script drew it."""
    server = await open_page(browser, base + "/", js=False)
    scripted = await open_page(browser, base + "/?refresh=0.5")
    await wait_js(scripted.page, "() => Number(document.body.dataset.renders) >= 1")
    return [(PHASES[0], server), (PHASES[1], scripted)]


async def cell(page: Page, name: str, selector: str) -> str:
    return await page.locator(f'tr.target[data-name="{name}"] {selector}').inner_text()


def hung(check: Check, now: float) -> ProbeResult:
    """Headers came (200), the answer never finished."""
    return ProbeResult(
        check=check, success=False, duration=30.0, timestamp=now, status_code=200,
        reason=Reason.TIMEOUT, detail="deadline exceeded",
    )  # fmt: skip


def loading(check: Check, now: float) -> ProbeResult:
    return ProbeResult(
        check=check, success=False, duration=0.003, timestamp=now, status_code=503,
        reason=Reason.LOADING, detail="Loading model",
    )  # fmt: skip


async def test_reasons_numbers_and_staleness_read_right(tmp_path: Path) -> None:
    names = ["refused", "hung", "quick", "stale", "loading", "late"]
    targets = [TargetConfig(name=n, url="http://127.0.0.1:9") for n in names]
    async with idle_exporter(targets, tmp_path) as exporter, serve(exporter.app) as base:
        monitor = exporter.monitor
        t0 = time.time() - 600
        clock = [t0]
        monitor.clock = lambda: clock[0]
        for check in Check:
            monitor.record("stale", ok(check, t0, 0.2, 0.05))
            monitor.record("quick", ok(check, t0, 0.0003, 0.0002))
            if check is not Check.HEALTH:
                monitor.record("late", ok(check, t0, 0.2, 0.05))
            monitor.record(
                "hung", ok(check, t0, 0.2, 0.05) if check is not Check.CHAT else hung(check, t0)
            )
        for _ in range(3):
            for check in Check:
                monitor.record("refused", failed(check, t0, AIOHTTP))
                monitor.record("loading", loading(check, t0))
                monitor.record("hung", hung(Check.CHAT, t0))
        clock[0] = t0 + 36  # the health check fails 36 s later; chat and models were not re-run
        for _ in range(3):
            monitor.record("stale", failed(Check.HEALTH, clock[0], AIOHTTP))
        monitor.record("late", ok(Check.HEALTH, clock[0]))  # up now, on chat's older pass
        states = {n: monitor.targets[n].status.state.value for n in names}
        assert states == {"refused": "down", "hung": "degraded", "quick": "up",
                          "stale": "down", "loading": "starting", "late": "up"}  # fmt: skip

        # The API marks the stale results and carries the short words beside the codes.
        async with httpx.AsyncClient() as client:
            api = (await client.get(base + "/api/v1/targets", timeout=10)).json()
        by = {t["name"]: t for t in api["targets"]}
        assert by["stale"]["checks"]["chat"]["stale"] is True
        assert by["stale"]["checks"]["health"]["stale"] is False
        assert by["quick"]["checks"]["chat"]["stale"] is False
        assert by["late"]["checks"]["chat"]["stale"] is False  # the evidence `up` stands on
        assert by["refused"]["summary"] == "health: connection refused"
        assert by["refused"]["checks"]["health"]["summary"] == "connection refused"
        assert by["refused"]["checks"]["health"]["reason"] == "connect_error"  # codes stay

        async with chromium() as browser:
            seen = await pages(browser, base)
            for phase, w in seen:
                page = w.page
                # one short reason; aiohttp's text only inside the closed details
                row = await cell(page, "refused", "")
                assert row.count("connection refused") >= 1, phase
                assert "ClientConnectorError" not in row, phase
                text = await page.locator('tr.target[data-name="refused"]').text_content()
                assert text is not None and text.count("ClientConnectorError") == 1, phase
                # an HTTP status never reads as a duration
                chat = await cell(page, "hung", 'li[data-check="chat"]')
                assert "HTTP 200" in chat and "timeout 200" not in chat, phase
                # sub-millisecond is "<1 ms", not "0 ms"
                quick = await cell(page, "quick", "")
                assert "<1 ms" in quick and "0 ms" not in quick, phase
                # stale: said in words, and the headlines say how old they are
                stale = await cell(page, "stale", 'li[data-check="chat"]')
                assert "not re-checked since down" in stale, phase
                assert (
                    await page.locator('tr[data-name="stale"] li[data-stale="true"]').count() == 2
                )
                ttft = await cell(page, "stale", "td.c-ttft .val")
                assert ttft.startswith("50 ms") and "ago" in ttft, (phase, ttft)
                lat = await cell(page, "stale", "td.c-lat .val")
                assert "ago" in lat, (phase, lat)
                # starting: expected, not three red failures
                marks = page.locator('tr[data-name="loading"] li.check')
                assert await marks.count() == 3
                for i in range(3):
                    assert await marks.nth(i).get_attribute("data-ok") == "wait", phase
                    colour = (
                        await marks.nth(i)
                        .locator(".cval")
                        .evaluate("e => getComputedStyle(e).color")
                    )
                    assert not is_red(colour), (phase, colour)
                assert "loading: expected" in await cell(page, "loading", "td.c-state"), phase
                assert w.errors == [], phase


async def test_the_checks_column_does_not_move_between_states(tmp_path: Path) -> None:
    targets = [TargetConfig(name="a", url="http://127.0.0.1:9")]
    async with idle_exporter(targets, tmp_path) as exporter, serve(exporter.app) as base:
        monitor = exporter.monitor
        for check in Check:
            monitor.record("a", ok(check, time.time(), 0.2, 0.05))
        async with chromium() as browser:
            w = await open_page(browser, base + "/?refresh=0.3")
            page = w.page

            async def left() -> float:
                box = await page.locator('tr.target[data-name="a"] td.c-checks').bounding_box()
                assert box is not None
                return box["x"]

            await wait_js(page, "() => Number(document.body.dataset.renders) >= 1")
            up = await left()
            long = "x" * 400 + " " + AIOHTTP
            for _ in range(3):
                for check in Check:
                    monitor.record("a", failed(check, time.time(), long))
            await wait_js(
                page, "() => document.querySelector('tr.target').dataset.state === 'down'"
            )
            assert await left() == up
            assert w.errors == []


async def test_overloaded_and_unknown_states_are_drawn(tmp_path: Path) -> None:
    """`overloaded` (coming from the engine) has its own colour and word; a state the page has
    never heard of is drawn plainly, not as an error."""
    targets = [TargetConfig(name=n, url="http://127.0.0.1:9") for n in ("busy", "odd", "dead")]
    async with idle_exporter(targets, tmp_path) as exporter, serve(exporter.app) as base:
        monitor = exporter.monitor
        for name in ("busy", "odd", "dead"):
            for check in Check:
                monitor.record(name, ok(check, time.time(), 0.2, 0.05))
        for name, word in (("busy", "overloaded"), ("odd", "rebalancing")):
            rt = monitor.targets[name]  # a newer engine's state: only its value is read
            rt.status = replace(rt.status, state=SimpleNamespace(value=word))
        for _ in range(3):
            monitor.record("dead", failed(Check.HEALTH, time.time()))
        async with chromium() as browser:
            for phase, w in await pages(browser, base):
                page = w.page
                colours = {}
                for name in ("busy", "odd", "dead"):
                    badge = page.locator(f'tr.target[data-name="{name}"] .badge')
                    colours[name] = rgb(
                        await badge.evaluate("e => getComputedStyle(e).backgroundColor")
                    )
                assert "busy, not broken" in await cell(page, "busy", "td.c-state"), phase
                assert await cell(page, "odd", ".badge") == "REBALANCING", phase
                assert len(set(colours.values())) == 3, (phase, colours)  # its own colour
                assert not is_red("rgb({}, {}, {})".format(*colours["busy"])), phase
                assert not is_red("rgb({}, {}, {})".format(*colours["odd"])), phase
                order = await page.evaluate(
                    "() => [...document.querySelectorAll('tr.target')].map(r => r.dataset.name)"
                )
                assert order == ["dead", "busy", "odd"], phase  # worst first, unknown last
                count = page.locator('#summary b[data-count="overloaded"]')
                assert await count.inner_text() == "1", phase
                assert w.errors == [], phase
