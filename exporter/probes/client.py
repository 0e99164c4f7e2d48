"""The probes' HTTP client, the one implementation of the Transport seam (transport.py): a
pool of keep-alive HTTP/1.1 connections (probes/h1.py) per host and port, requests written by
probes/wire.py.

Neither httpx nor aiohttp on this path: the probes' whole client costs a fraction of what
aiohttp's general one did per request (bench/transport.py; README "Stack choices"). Redirects
are not followed, no cookie is kept, a proxy only when the target's config says so (its Route,
probes/route.py): a probe sees what the server sent, and one probe never changes the next; a
body compressed although identity was asked for is decoded, under the same caps.
Connections open in probes/connect.py. A request that finds
its kept-alive connection closed by the server before a byte came back (the server's idle
timeout raced the probe) is sent once more on a new connection: that race is the client's,
not the server's failure."""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

from exporter.errors import ServerDisconnected
from exporter.probes.connect import open_connection
from exporter.probes.decode import decoded
from exporter.probes.h1 import Connection
from exporter.probes.transport import ProbeResponse, Route, Timeouts
from exporter.probes.wire import Where, request_bytes, where

__all__ = ["Http1Transport", "make_client"]

URL_CACHE = 65536  # parsed URLs kept (a probe asks the same few paths of each target)
KEEPALIVE = 15.0  # seconds an idle connection is kept for the next probe


class _Body:
    """The body as it arrives: each step every byte buffered so far (an async iterator, not a
    generator: nothing to finalize when a probe stops reading early)."""

    __slots__ = ("_conn", "_read")

    def __init__(self, conn: Connection, read: float) -> None:
        self._conn, self._read = conn, read

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        while True:
            if conn.chunks:
                return conn.take()
            if conn.complete:
                raise StopAsyncIteration
            if conn.error is not None:
                raise conn.error
            await conn.wait(self._read)


class _Response:
    __slots__ = ("_conn", "_read", "headers", "status_code")

    def __init__(self, conn: Connection, read: float) -> None:
        assert conn.headers is not None
        self._conn, self._read = conn, read
        self.status_code = conn.status
        self.headers: Mapping[str, str] = conn.headers

    def iter_raw(self) -> AsyncIterator[bytes]:
        """The body as sent, or decoded when a gateway compressed it although the probe
        asked for identity (probes/decode.py: the caps apply to the decoded bytes)."""
        encoding = self.headers.get("content-encoding")
        body = _Body(self._conn, self._read)
        return body if encoding is None else decoded(body, encoding)


class _Exchange(AbstractAsyncContextManager[ProbeResponse]):
    """One request: a connection from the pool (or a new one) while the probe reads."""

    __slots__ = ("_conn", "_data", "_pool", "_route", "_timeout", "_where")

    def __init__(
        self,
        pool: Http1Transport,
        where: Where,
        data: bytes,
        timeout: Timeouts,
        route: Route | None,
    ) -> None:
        self._pool, self._where, self._data, self._timeout = pool, where, data, timeout
        self._route = route
        self._conn: Connection | None = None

    async def __aenter__(self) -> ProbeResponse:
        pool = self._pool
        await pool.slots.acquire()
        try:
            self._conn = await pool.exchange(self._where, self._data, self._timeout, self._route)
        except BaseException:
            pool.slots.release()
            raise
        return _Response(self._conn, self._timeout.read)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool.slots.release()
        if self._conn is not None:
            self._pool.done(self._conn, clean=exc_type is None)


class Http1Transport:
    """The Transport: `stream()` a request on a kept-alive connection to the target when one
    is idle, else on a new one; at most `max_connections` exchanges at once."""

    def __init__(self, max_connections: int = 256, keepalive: float = KEEPALIVE) -> None:
        """https targets are verified against the system store unless their Route (their
        `tls:` setting, probes/route.py) says otherwise."""
        self.max_connections = max_connections
        self.keepalive = keepalive
        self.slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Any, list[Connection]] = {}
        self._where: dict[str, Where] = {}
        self._next_sweep = 0.0
        self._closed = False

    def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: Timeouts,
        json: Any = None,
        route: Route | None = None,
    ) -> AbstractAsyncContextManager[ProbeResponse]:
        found = self._where.get(url)
        if found is None:
            if len(self._where) >= URL_CACHE:
                self._where.clear()
            found = self._where[url] = where(url)
        body = None
        if json is not None:
            body = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
        proxy = route.proxy if route is not None else None
        if proxy is not None and not found.tls:  # http through a proxy: absolute form
            data = request_bytes(method, found, headers, body, proxy=proxy.auth or "")
        else:
            data = request_bytes(method, found, headers, body)
        return _Exchange(self, found, data, timeout, route)

    async def exchange(
        self, target: Where, data: bytes, timeout: Timeouts, route: Route | None = None
    ) -> Connection:
        """Send `data` and wait for the response's headers; the connection carries the rest."""
        key = target.key if route is None else (target.key, route)
        for attempt in (1, 2):
            conn, reused = self._kept(key)
            if conn is None:
                conn = await open_connection(target, route, timeout.connect)
                conn.key = key
            conn.begin()
            conn.send(data)
            try:
                while conn.headers is None:
                    await conn.wait(timeout.read)
            except ServerDisconnected:
                conn.close()
                if reused and conn.received == 0 and attempt == 1:
                    continue  # the server's idle timeout won the race: a new connection
                raise
            except BaseException:
                conn.close()
                raise
            return conn
        raise AssertionError("unreachable")  # pragma: no cover

    def done(self, conn: Connection, *, clean: bool) -> None:
        """The probe let go of `conn`: keep it for the next one when its answer ended cleanly
        (or let it finish reading a short tail first), else close it."""
        if self._closed or not clean:
            conn.close()
        elif conn.complete:
            self._keep(conn)
        elif conn.drain():
            conn.on_idle = self._keep
        else:
            conn.close()

    def _keep(self, conn: Connection) -> None:
        conn.on_idle = None
        if self._closed or not conn.reusable:
            conn.close()
            return
        conn.rest()  # nothing of the last exchange is kept while idle
        self._idle.setdefault(conn.key, []).append(conn)
        now = conn.loop.time()
        if now >= self._next_sweep:
            self._sweep(now)

    def _kept(self, key: Any) -> tuple[Connection | None, bool]:
        idle = self._idle.get(key)
        if idle:
            now = idle[-1].loop.time()
            while idle:
                conn = idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive:
                    return conn, True
                conn.close()
        return None, False

    def _sweep(self, now: float) -> None:
        """Close connections idle longer than `keepalive` (every third of it, on a release)."""
        self._next_sweep = now + self.keepalive / 3
        for key, conns in list(self._idle.items()):
            fresh = [c for c in conns if not c.closed and now - c.idle_since < self.keepalive]
            for conn in conns:
                if conn not in fresh:
                    conn.close()
            if fresh:
                self._idle[key] = fresh
            else:
                del self._idle[key]

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def __aenter__(self) -> Http1Transport:
        self._closed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def make_client(max_connections: int = 256) -> Http1Transport:
    """The probes' transport (the scheduler's and /probe's each have their own pool)."""
    return Http1Transport(max_connections)
