"""Small local HTTP stand-ins (aiohttp) on 127.0.0.1 port 0 or a unix socket, recording requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.servers import serve_aiohttp

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Stub:
    url: str
    requests: list[Seen] = field(default_factory=list)


@asynccontextmanager
async def stub_server(
    respond: Callable[[Seen], Awaitable[web.StreamResponse] | web.StreamResponse],
    *,
    uds: Path | None = None,
) -> AsyncIterator[Stub]:
    stub = Stub(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        seen = Seen(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            await request.read(),
        )
        stub.requests.append(seen)
        out = respond(seen)
        if isinstance(out, Awaitable):
            out = await out
        return out

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with serve_aiohttp(app, uds=uds) as url:
        stub.url = url
        yield stub
