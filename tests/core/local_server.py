"""A real HTTP server on 127.0.0.1 (aiohttp.web) whose answers a test scripts route by route,
so the probes run through the production transport (exporter/probes/transport.py), sockets
and all. What each route was sent is recorded."""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from exporter.config import TargetConfig
from exporter.probes import ProbeContext
from exporter.probes.client import Http1Transport
from tests.servers import serve_aiohttp

__all__ = ["MODEL", "Call", "Handler", "LocalServer", "Route"]

MODEL = "Qwen/Qwen3-4B-Instruct-2507"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class Route:
    """One method and path: what it answers, and the requests it got."""

    handler: Handler | None = None
    calls: list[Call] = field(default_factory=list)

    def respond(
        self,
        status: int = 200,
        *,
        json: Any = None,
        text: str | None = None,
        content: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Route:
        if json is not None:
            content = jsonlib.dumps(json).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        elif text is not None:
            content = text.encode()
            headers = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, body=content, headers=CIMultiDict(headers or {}))

        self.handler = handler
        return self

    def stream(
        self,
        parts: Iterable[bytes],
        status: int = 200,
        ctype: str = "text/event-stream; charset=utf-8",
        delay: float = 0.0,
    ) -> Route:
        """Send `parts` as separate writes (chunked), `delay` seconds apart."""
        parts = list(parts)

        async def handler(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(status=status, headers={"Content-Type": ctype})
            await resp.prepare(request)
            for part in parts:
                if delay:
                    await asyncio.sleep(delay)
                await resp.write(part)
            await resp.write_eof()
            return resp

        self.handler = handler
        return self

    def handle(self, handler: Handler) -> Route:
        self.handler = handler
        return self


class LocalServer:
    """`get(path)` / `post(path)` script a route; `context()` is a probe context on it."""

    def __init__(self) -> None:
        self.url = ""  # set by start()
        self.routes: dict[tuple[str, str], Route] = {}
        self.transport = Http1Transport(8)
        self._stack = AsyncExitStack()
        self._released = asyncio.Event()

    def get(self, path: str) -> Route:
        return self.routes.setdefault(("GET", path), Route())

    def post(self, path: str) -> Route:
        return self.routes.setdefault(("POST", path), Route())

    def context(
        self,
        timeout: float = 5.0,
        model: str | None = MODEL,
        url: str | None = None,
        **target: Any,
    ) -> ProbeContext:
        config = TargetConfig(name="t", url=url or self.url, **target)
        return ProbeContext(self.transport, config, timeout, model)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        route = self.routes.get((request.method, request.path))
        if route is None or route.handler is None:
            return web.Response(status=404, text="no route scripted")
        route.calls.append(Call(request.method, request.path, request.headers, body))
        return await route.handler(request)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.url = await self._stack.enter_async_context(serve_aiohttp(app))

    async def hang(self) -> None:
        """What a handler awaits to never answer: until stop() (which would otherwise wait
        for the handler to end)."""
        await self._released.wait()

    async def stop(self) -> None:
        self._released.set()
        await self.transport.aclose()
        await self._stack.aclose()
