"""The one run-a-server-on-a-free-port helper for test stand-ins: an aiohttp app on
127.0.0.1 (a free port from `tests.conftest.free_port`) or on a unix socket; stopped on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from tests.conftest import free_port

__all__ = ["serve_aiohttp"]


@asynccontextmanager
async def serve_aiohttp(app: web.Application, *, uds: Path | None = None) -> AsyncIterator[str]:
    """Yield the base URL (`http://127.0.0.1:PORT`, or `unix:PATH` with `uds`)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site: web.BaseSite
        if uds is not None:
            site = web.UnixSite(runner, str(uds))
            url = f"unix:{uds}"
        else:
            port = free_port()
            site = web.TCPSite(runner, "127.0.0.1", port)
            url = f"http://127.0.0.1:{port}"
        await site.start()
        yield url
    finally:
        await runner.cleanup()
