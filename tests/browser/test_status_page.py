"""The status page in a real headless Chromium: what a person sees at `/` while targets go
down and come back, with no targets, with a thousand, and with hostile text from a server."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.async_api import Page

from exporter.config import Settings, TargetConfig
from exporter.engine.state import State
from exporter.probes.results import Check
from exporter.simulate import FaultSpec, Simulator
from tests.core.live import running_exporter
from tests.waiting import wait_for

from .helpers import (
    DESKTOP,
    PHONE,
    chromium,
    failed,
    idle_exporter,
    ok,
    open_page,
    serve,
    wait_js,
    wait_renders_after,
)

pytestmark = pytest.mark.browser

FAST = {"failures_to_down": 3, "retry_interval": 0.2}
HOSTILE_MODEL = '"><img src=x onerror="window.__xss=1">'
HOSTILE_DETAIL = "<script>window.__xss=2</script> upstream said <b>boom</b>"


def rgb(css: str) -> tuple[int, int, int]:
    m = re.match(r"rgba?\((\d+), (\d+), (\d+)", css)
    assert m, css
    r, g, b = (int(x) for x in m.groups())
    return r, g, b


def is_red(css: str) -> bool:
    r, g, b = rgb(css)
    return r > 150 and r > g + 60 and r > b + 60


def is_green(css: str) -> bool:
    r, g, b = rgb(css)
    return g > r + 40 and g > b + 20


async def row(page: Page, name: str) -> dict[str, str]:
    """The state a person sees in one target's row: attribute, word, badge colour."""
    return await page.evaluate(
        """name => {
            const tr = [...document.querySelectorAll('tr.target')].find(r => r.dataset.name === name);
            if (!tr) return null;
            const badge = tr.querySelector('.badge');
            return {state: tr.dataset.state, word: badge.textContent,
                    colour: getComputedStyle(badge).backgroundColor,
                    border: getComputedStyle(tr).borderLeftColor};
        }""",
        name,
    )


async def test_outage_turns_red_within_one_refresh_and_recovery_green(
    sim: Simulator, tmp_path: Path
) -> None:
    settings = Settings(
        targets=[TargetConfig(name="qwen", url=sim.url, thresholds=FAST)],
        default_interval=1.0,
        history_file=tmp_path / "history.jsonl",
    )
    async with running_exporter(settings) as (exporter, base), chromium() as browser:
        rt = exporter.monitor.targets["qwen"]
        w = await open_page(browser, base + "/?refresh=1")
        page = w.page

        async def settle(state: State) -> dict[str, str]:
            """Once the exporter holds `state`, the first refresh after must show it."""
            await wait_for(lambda: rt.status.state is state, timeout=40)
            await wait_renders_after(page, time.time())
            return await row(page, "qwen")

        seen = await settle(State.UP)
        assert seen["state"] == "up" and seen["word"] == "up"
        assert is_green(seen["colour"]) and is_green(seen["border"]), seen
        await wait_js(page, "() => document.querySelectorAll('tr.target polyline').length === 2")

        sim.set_fault(FaultSpec(kind="down"))
        seen = await settle(State.DOWN)
        assert seen["state"] == "down" and seen["word"] == "down"
        assert is_red(seen["colour"]) and is_red(seen["border"]), seen
        text = await page.inner_text("tr.target")
        assert "health: connection refused" in text  # short human words...
        assert "ConnectFailed" not in text  # ...and the transport's text only on demand
        await page.click("tr.target details.reason summary")
        detail = await page.inner_text("tr.target .rdetail")
        assert "health_connect_error" in detail and "ConnectFailed" in detail
        assert await page.title() == "llm-heartbeat: 1 down"
        assert "up → down" in await page.inner_text("#transitions")

        sim.clear_faults()
        seen = await settle(State.UP)
        assert seen["state"] == "up" and is_green(seen["colour"]), seen
        newest = await page.inner_text("#transitions li >> nth=0")
        assert "qwen" in newest and "→ up" in newest
        assert await page.is_hidden("#problem")
        assert w.errors == []


async def test_no_targets_explains_and_shows_no_error(tmp_path: Path) -> None:
    async with (
        idle_exporter([], tmp_path) as exporter,
        serve(exporter.app) as base,
        chromium() as browser,
    ):
        w = await open_page(browser, base + "/?refresh=0.5")
        await wait_js(w.page, "() => Number(document.body.dataset.renders) >= 2")
        assert await w.page.is_visible("#empty")
        assert "No targets" in await w.page.inner_text("#empty")
        assert await w.page.is_hidden("#targets")
        assert await w.page.is_hidden("#nomatch")
        assert await w.page.inner_text("b[data-count='all']") == "0"
        assert await w.page.title() == "llm-heartbeat: no targets"
        assert w.errors == []


async def test_a_thousand_targets_render_refresh_and_filter(tmp_path: Path) -> None:
    n = 1000
    targets = [TargetConfig(name=f"t{i:04d}", url=f"http://127.0.0.1:9/{i}") for i in range(n)]
    async with idle_exporter(targets, tmp_path) as exporter, serve(exporter.app) as base:
        monitor, now = exporter.monitor, time.time()
        for i, t in enumerate(targets):
            for k in range(6):
                for check in Check:
                    if i % 10 == 3:  # every tenth target is down
                        monitor.record(t.name, failed(check, now + k))
                    else:
                        monitor.record(t.name, ok(check, now + k, 0.2 + k / 100, 0.05 + i / 1e5))
        async with chromium() as browser:
            w = await open_page(browser, base + "/?refresh=1")
            page = w.page
            assert await page.locator("tr.target").count() == n  # server-rendered
            assert await page.inner_text("b[data-count='down']") == "100"
            assert await page.inner_text("b[data-count='up']") == "900"
            # worst first: the first row is a down target
            assert await page.get_attribute("tr.target >> nth=0", "data-state") == "down"

            for _ in range(3):  # t0000 goes down while the page is open
                for check in Check:
                    monitor.record("t0000", failed(check, time.time()))
            assert monitor.targets["t0000"].status.state is State.DOWN
            await wait_renders_after(page, time.time(), timeout=60)
            assert await page.locator("tr.target").count() == n  # updated in place
            assert await page.inner_text("b[data-count='down']") == "101"
            assert (await row(page, "t0000"))["state"] == "down"
            assert await page.locator("tr.target svg.spark").count() == 2 * n

            await page.fill("#filter", "t0999")
            assert await page.locator("tr.target:visible").count() == 1
            await page.fill("#filter", "")
            await page.click("button[data-filter='down']")
            assert await page.locator("tr.target:visible").count() == 101
            await page.fill("#filter", "no-such-target")
            assert await page.is_visible("#nomatch")
            assert w.errors == []


async def test_text_from_targets_is_shown_as_text_never_markup(tmp_path: Path) -> None:
    target = TargetConfig(name="evil", url="http://127.0.0.1:9", model=HOSTILE_MODEL)
    async with idle_exporter([target], tmp_path) as exporter, serve(exporter.app) as base:
        monitor = exporter.monitor
        for _ in range(3):
            monitor.record("evil", failed(Check.HEALTH, time.time(), detail=HOSTILE_DETAIL))
        # the history file's records are not validated like configured names
        monitor.transitions.append(
            {
                "time": time.time(),
                "target": "evil",
                "from": "up",
                "to": '"><script>window.__xss=4</script>',
                "reason": "<img src=x onerror=window.__xss=3>",
                "detail": HOSTILE_DETAIL,
            }
        )
        # nor are their types: a damaged record is shown as far as it goes, never breaks the page
        monitor.transitions.append({"time": "soon", "target": "evil", "from": None, "to": 5})
        # and a target no longer configured does not fill "Recent transitions"
        monitor.transitions.append(
            {"time": time.time(), "target": "gone", "from": "up", "to": "down"}
        )
        async with chromium() as browser:
            w = await open_page(browser, base + "/?refresh=0.5")
            page = w.page
            for phase in ("server-rendered", "refreshed by the script"):
                if phase != "server-rendered":
                    await wait_js(page, "() => Number(document.body.dataset.renders) >= 2")
                # all text, the details shown on demand included
                main = await page.evaluate("() => document.querySelector('main').textContent")
                assert HOSTILE_MODEL in main, phase
                assert "<script>window.__xss=2</script>" in main, phase
                assert "<img src=x onerror=window.__xss=3>" in main, phase
                injected = await page.evaluate(
                    "() => document.querySelectorAll('main img, main script, main b').length"
                )
                assert injected == 0, phase
                assert await page.evaluate("() => window.__xss === undefined"), phase
                assert re.search(r"never\s+evil\s+→ 5", main), phase
                assert "gone" not in main, phase
            assert w.errors == []


async def test_readable_on_a_phone_and_on_a_desktop(tmp_path: Path) -> None:
    targets = [
        TargetConfig(name="qwen-3-4b", url="http://127.0.0.1:9"),
        TargetConfig(
            name="llama-3-70b-instruct-on-a-very-long-host-name", url="http://127.0.0.1:10"
        ),
    ]
    async with idle_exporter(targets, tmp_path) as exporter, serve(exporter.app) as base:
        now = time.time()
        for k in range(20):
            for check in Check:
                exporter.monitor.record(targets[0].name, ok(check, now, 0.3 + k % 4 / 10, 0.04))
                long_detail = "ReadTimeout " + "x" * 300
                exporter.monitor.record(targets[1].name, failed(check, now, detail=long_detail))
        async with chromium() as browser:
            for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
                w = await open_page(browser, base + "/?refresh=0.5", viewport)
                await wait_js(w.page, "() => Number(document.body.dataset.renders) >= 1")
                await w.page.screenshot(
                    path=f"/tmp/llm-heartbeat-status-{label}.png", full_page=True
                )
                widths = await w.page.evaluate(
                    "() => [document.documentElement.scrollWidth, window.innerWidth]"
                )
                assert widths[0] <= widths[1], (label, widths)  # no sideways scrolling
                font = await w.page.evaluate(
                    "() => parseFloat(getComputedStyle(document.querySelector('.name')).fontSize)"
                )
                assert font >= 13, label
                down = await row(w.page, targets[1].name)
                assert down["word"] == "down" and is_red(down["colour"]), label
                assert w.errors == [], label


async def test_first_view_works_without_javascript(tmp_path: Path) -> None:
    targets = [TargetConfig(name="a", url="http://127.0.0.1:9")]
    async with idle_exporter(targets, tmp_path) as exporter, serve(exporter.app) as base:
        now = time.time()
        for k in range(5):
            for check in Check:
                exporter.monitor.record("a", ok(check, now + k, 0.25, 0.03))
        async with chromium() as browser:
            w = await open_page(browser, base + "/", js=False)
            seen = await row(w.page, "a")
            assert seen["state"] == "up" and is_green(seen["colour"])
            assert await w.page.locator("tr.target polyline").count() == 2
            assert "30 ms" in await w.page.inner_text("td.c-ttft")
            refresh = w.page.locator("noscript meta[http-equiv='refresh']")
            assert await refresh.get_attribute("content") == "5"
            assert w.errors == []


async def test_unreachable_exporter_is_said_and_last_view_kept(tmp_path: Path) -> None:
    targets = [TargetConfig(name="a", url="http://127.0.0.1:9")]
    async with idle_exporter(targets, tmp_path) as exporter, chromium() as browser:
        async with serve(exporter.app) as base:
            w = await open_page(browser, base + "/?refresh=0.5")
            await wait_js(w.page, "() => Number(document.body.dataset.renders) >= 1")
        await wait_js(w.page, "() => !document.getElementById('problem').hidden")
        assert "Cannot reach the exporter" in await w.page.inner_text("#problem")
        assert await w.page.locator("tr.target").count() == 1
        assert not [e for e in w.errors if "pageerror" in e]
