"""Driving the status page in the system's headless Chromium (Playwright's own browser
download does not work here), and serving an exporter whose monitor a test feeds by hand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from playwright.async_api import Browser, Page, async_playwright
from starlette.types import ASGIApp

from exporter.config import Settings, TargetConfig
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.runtime import Exporter
from tests.conftest import free_port, require_binary
from tests.waiting import wait_for

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 860}


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = require_binary("chromium")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    """A page plus every console error, page error and failed request it produced."""

    page: Page
    errors: list[str] = field(default_factory=list)


async def open_page(
    browser: Browser, url: str, viewport: dict[str, int] = DESKTOP, *, js: bool = True
) -> Watched:
    context = await browser.new_context(viewport=viewport, java_script_enabled=js)
    page = await context.new_page()
    watched = Watched(page)
    page.on(
        "console",
        lambda m: (
            watched.errors.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: watched.errors.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: watched.errors.append(f"requestfailed: {r.url}"))
    response = await page.goto(url)
    assert response is not None and response.status == 200
    return watched


async def wait_js(page: Page, expression: str, arg: object = None, timeout: float = 20.0) -> object:
    """Poll a JS function of one argument until it returns something truthy. (Playwright's
    wait_for_function evaluates a string inside the page, which the page's CSP forbids.)"""
    return await wait_for(lambda: page.evaluate(expression, arg), timeout, what=expression)


async def renders(page: Page) -> int:
    """How many times the script has re-rendered from the JSON API."""
    return int(await page.evaluate("() => Number(document.body.dataset.renders)"))


async def wait_renders_after(page: Page, server_time: float, timeout: float = 20.0) -> None:
    """Wait for the first render of data the server generated after `server_time`."""
    await wait_js(page, "t => Number(document.body.dataset.generatedAt) > t", server_time, timeout)


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """uvicorn on a free loopback port; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def idle_exporter(targets: list[TargetConfig], tmp_path: Path) -> AsyncIterator[Exporter]:
    """The real exporter (its app and status routes) with the scheduler not started: the test
    feeds the monitor itself, so a thousand targets cost no probes."""
    settings = Settings(targets=targets, history_file=tmp_path / "history.jsonl")
    exporter = Exporter(settings)
    try:
        yield exporter
    finally:
        await exporter.stop()


def ok(check: Check, now: float, duration: float = 0.05, ttft: float | None = None) -> ProbeResult:
    return ProbeResult(
        check=check,
        success=True,
        duration=duration,
        timestamp=now,
        status_code=200,
        ttft=ttft if check is Check.CHAT else None,
        completion_tokens=8 if check is Check.CHAT else None,
        tokens_per_second=120.0 if check is Check.CHAT else None,
        models=("Qwen/Qwen3-4B",) if check is Check.MODELS else (),
    )


def failed(check: Check, now: float, detail: str = "connection refused") -> ProbeResult:
    return ProbeResult(
        check=check,
        success=False,
        duration=0.002,
        timestamp=now,
        reason=Reason.CONNECT_ERROR,
        detail=detail,
    )
