"""The HTTP side under abuse: slowloris connections, log floods, reload from the wrong peer or
with a broken file, a slow discovery source at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from exporter.config import Settings, TargetConfig, load_config
from exporter.engine.monitor import Monitor
from exporter.logs import RepeatFilter
from exporter.server.app import create_app
from exporter.server.serve import raise_nofile, server_config
from tests.conftest import free_port
from tests.waiting import wait_for

from .live import running_exporter, scrape, value

OFF = {"models": {"enabled": False}, "chat": {"enabled": False}}


# ---- slowloris ------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def guarded_server(**limits: float) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    port = free_port()
    config = server_config(Starlette(routes=[Route("/", ok)]), "127.0.0.1", port, **limits)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _open_burst(port: int, n: int) -> list[socket.socket]:
    """`n` connections as fast as the kernel takes them (the server accepts them in a burst);
    every other one starts a request and never finishes its headers."""
    socks = []
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        if i % 2:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(sock)
    return socks


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(30)
    try:
        return sock.recv(1) == b""
    except OSError:
        return True  # a reset is closed too
    finally:
        sock.close()


async def test_half_open_connections_are_bounded_and_closed() -> None:
    """Past the bound the oldest idle connections are dropped (also in a burst), the rest
    after the header deadline, and a real request is answered throughout (uvicorn alone
    keeps them all, forever)."""
    async with guarded_server(max_connections=20, header_timeout=1.0) as (server, base):
        port = int(base.rsplit(":", 1)[1])
        socks = await asyncio.to_thread(_open_burst, port, 60)
        await asyncio.sleep(0.3)
        assert len(server.server_state.connections) <= 21
        async with httpx.AsyncClient() as client:
            assert (await client.get(base + "/", timeout=10)).status_code == 200
        closed = await asyncio.gather(*(asyncio.to_thread(_closed_by_server, s) for s in socks))
        assert closed == [True] * 60
        await wait_for(lambda: len(server.server_state.connections) == 0)


def test_soft_nofile_limit_is_raised_to_the_hard_one() -> None:
    code = (
        "import resource; from exporter.server.serve import raise_nofile;"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE);"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard));"
        "raise_nofile(); print(resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
    assert raise_nofile()[0] == raise_nofile()[1]


def test_identical_errors_are_rate_limited_with_a_count() -> None:
    flt = RepeatFilter(window=60.0, burst=10)
    logger = logging.getLogger("test.flood")

    def record(msg: str, at: float, level: int = logging.ERROR) -> logging.LogRecord:
        rec = logger.makeRecord(logger.name, level, __file__, 1, msg, (), None)
        rec.created = at
        return rec

    passed = [
        flt.filter(record("socket.accept() out of system resource", 1000.0 + i / 100))
        for i in range(5000)
    ]
    assert passed[:10] == [True] * 10 and passed.count(True) == 10 and len(passed) == 5000
    assert flt.filter(record("another error", 1001.0))  # a different message is not hidden
    assert flt.filter(record("socket.accept() out of system resource", 1000.0, logging.INFO))
    later = record("socket.accept() out of system resource", 1061.0)
    assert flt.filter(later) and "4990 identical message(s) suppressed" in later.getMessage()


# ---- /-/reload ------------------------------------------------------------------------------
def _settings(tmp_path: Path, **extra: object) -> Settings:
    target = TargetConfig(name="a", url="http://127.0.0.1:9", checks=OFF)
    return Settings(targets=[target], history_file=tmp_path / "h.jsonl", **extra)  # type: ignore[arg-type]


async def _noop_reload() -> tuple[bool, str]:
    return True, "reloaded"


async def test_reload_trusts_no_name_for_the_peer(tmp_path: Path) -> None:
    """Only a loopback *address* passes, whatever the client is called or forwards."""
    app = create_app(Monitor(_settings(tmp_path)), CollectorRegistry(), reload=_noop_reload)
    cases = [("localhost", 403), ("testclient", 403), ("10.0.0.5", 403), ("::1", 200)]
    for host, status in cases:
        transport = httpx.ASGITransport(app=app, client=(host, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            r = await client.post("/-/reload", headers={"X-Forwarded-For": "127.0.0.1"})
            assert r.status_code == status, (host, r.text)
    assert len(cases) == 4


async def test_reload_ignores_forwarded_headers_and_takes_a_token(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("targets: [{name: a, url: 'http://127.0.0.1:9'}]\n")
    async with running_exporter(_settings(tmp_path), cfg) as (_, base), httpx.AsyncClient() as c:
        # uvicorn would take the client address from this header of a loopback peer
        r = await c.post(base + "/-/reload", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 200, r.text
    token = tmp_path / "token"
    token.write_text("s3cret-reload\n")
    guarded = _settings(tmp_path, reload={"token_file": token, "allow_loopback": False})
    async with running_exporter(guarded, cfg) as (_, base), httpx.AsyncClient() as c:
        assert (await c.post(base + "/-/reload")).status_code == 403
        bad = {"Authorization": "Bearer nope"}
        assert (await c.post(base + "/-/reload", headers=bad)).status_code == 403
        good = {"Authorization": "Bearer s3cret-reload"}
        assert (await c.post(base + "/-/reload", headers=good)).status_code == 200


async def test_any_failed_reload_keeps_the_config_and_says_so(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("targets: [{name: a, url: 'http://127.0.0.1:9'}]\n")
    settings = load_config(cfg).model_copy(update={"history_file": tmp_path / "h.jsonl"})
    async with running_exporter(settings, cfg) as (_, base), httpx.AsyncClient() as c:
        cases = [
            b"targets: []\n# caf\xe9\n",
            b"1: x\n",
            b"targets: [{name: b, url: 'http://u:p/w@h'}]\n",
        ]
        for content in cases:
            cfg.write_bytes(content)
            r = await c.post(base + "/-/reload")
            assert r.status_code == 400 and r.json()["status"] == "error", r.text
            text = await scrape(base)
            assert value(text, "llm_exporter_config_last_reload_successful") == 0.0
            assert value(text, "llm_exporter_targets") == 1.0
            cfg.write_text("targets: [{name: a, url: 'http://127.0.0.1:9'}]\n")
            assert (await c.post(base + "/-/reload")).status_code == 200
            assert value(await scrape(base), "llm_exporter_config_last_reload_successful") == 1.0


# ---- the process: SIGHUP and serving first --------------------------------------------------
def _start(tmp_path: Path, cfg: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "log.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_HEARTBEAT_")}
    env["LLM_HEARTBEAT_HISTORY_FILE"] = str(tmp_path / "h.jsonl")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.cli",
            "run",
            "-c",
            str(cfg),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stderr=log.open("wb"),
        stdout=subprocess.DEVNULL,
        env=env,
    )
    return proc, log


def _poll(fn: Callable[[], object], timeout: float = 40.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(httpx.HTTPError):
            if fn():
                return True
        time.sleep(0.1)
    return False


def test_sighup_reload_error_is_logged_not_lost(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yml"
    cfg.write_text("targets: [{name: a, url: 'http://127.0.0.1:9'}]\n")
    port = free_port()
    proc, log = _start(tmp_path, cfg, port)
    metric = f"http://127.0.0.1:{port}/metrics"
    ok = "llm_exporter_config_last_reload_successful"
    try:
        assert _poll(lambda: httpx.get(f"http://127.0.0.1:{port}/-/ready").status_code == 200)
        cfg.write_bytes(b"targets: []\n# caf\xe9\n")
        proc.send_signal(signal.SIGHUP)
        assert _poll(lambda: value(httpx.get(metric).text, ok) == 0.0), log.read_text()
        assert value(httpx.get(metric).text, "llm_exporter_targets") == 1.0
    finally:
        proc.terminate()
        proc.wait(20)
    text = log.read_text()
    assert "reload rejected" in text and "not UTF-8" in text
    assert "never retrieved" not in text and "Traceback" not in text


async def _black_hole() -> tuple[asyncio.Server, int]:
    """A discovery source that accepts and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_slow_discovery_source_does_not_delay_serving(tmp_path: Path) -> None:
    hole, hole_port = await _black_hole()
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "targets: [{name: a, url: 'http://127.0.0.1:9'}]\n"
        f"discovery: {{http_sd: [{{url: 'http://127.0.0.1:{hole_port}/sd', timeout: 120}}]}}\n"
    )
    port = free_port()
    proc, log = _start(tmp_path, cfg, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as c:
            healthy = await wait_for(lambda: _get(c, base + "/-/healthy"), timeout=40)
            assert healthy.status_code == 200, log.read_text()
            # still waiting for the source (120 s): served, but not ready
            assert (await c.get(base + "/-/ready")).status_code == 503
            assert (await c.get(base + "/metrics")).status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)
        hole.close()


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        return await client.get(url, timeout=2)
    except httpx.HTTPError:
        return None
