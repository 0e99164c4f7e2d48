"""Opening a probe's connection: every address of the name tried (RFC 8305's staggered
attempts: the next address when the previous has not connected within HAPPY_EYEBALLS_DELAY,
families interleaved; asyncio's own `happy_eyeballs_delay` is not in uvloop, which the exporter
runs on), TLS with the target's context, and a proxy
(absolute-form requests for http, a CONNECT tunnel for https). Errors say what failed in
words and never repeat a URL or a credential."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from exporter.errors import ConnectFailed, ConnectTimeout
from exporter.probes.h1 import Connection
from exporter.probes.tls import default_context, tls_words
from exporter.probes.transport import Proxy, Route
from exporter.probes.wire import Where

__all__ = ["HAPPY_EYEBALLS_DELAY", "open_connection", "resolve"]

# RFC 8305's recommended "Connection Attempt Delay": the next address is tried when the
# previous one has not connected after this long (the attempts then race)
HAPPY_EYEBALLS_DELAY = 0.25
MAX_TUNNEL_REPLY = 16 * 1024  # the proxy's answer to CONNECT, headers included


class _Tunnel(asyncio.Protocol):
    """The proxy's answer to CONNECT, up to its blank line (nothing may follow it before the
    TLS handshake we start)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.reply: asyncio.Future[bytes] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.data = b""  # every byte the proxy sent

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self.reply.done():
            return
        head, sep, _ = self.data.partition(b"\r\n\r\n")
        if sep:
            self.reply.set_result(head)
        elif len(self.data) > MAX_TUNNEL_REPLY:
            self.reply.set_exception(ConnectFailed("the proxy's answer to CONNECT is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(ConnectFailed("the proxy closed the connection"))


async def open_connection(target: Where, route: Route | None, timeout: float) -> Connection:
    """A connection to `target` (through its route's proxy, if any), TLS done, within
    `timeout` seconds."""
    loop = asyncio.get_running_loop()
    place = f"{target.host}:{target.port}"
    tls = None
    name = None
    if target.tls:
        tls = route.tls if route is not None and route.tls is not None else default_context()
        name = (route.server_name if route is not None else None) or target.host
    proxy = route.proxy if route is not None else None
    conn: Connection
    try:
        async with asyncio.timeout(timeout):
            if proxy is None:
                _, conn = await _connected(
                    loop, lambda: Connection(loop), target.host, target.port, tls, name
                )
            elif tls is None:  # http through a proxy: requests in absolute form
                _, conn = await _connected(
                    loop, lambda: Connection(loop), proxy.host, proxy.port, None, None
                )
            else:
                conn = await _tunnel(loop, proxy, target, tls, name)
    except TimeoutError:
        via = " through the proxy" if proxy is not None else ""
        raise ConnectTimeout(f"no connection to {place}{via} within {timeout:g}s") from None
    except ssl.SSLError as exc:  # before OSError: it is one
        raise ConnectFailed(f"{tls_words(exc)} ({place})") from None
    except OSError as exc:
        what = "the proxy for " if proxy is not None else ""
        raise ConnectFailed(f"cannot connect to {what}{place}: {exc.strerror or exc}") from None
    return conn


async def _tunnel(
    loop: asyncio.AbstractEventLoop,
    proxy: Proxy,
    target: Where,
    tls: ssl.SSLContext,
    name: str | None,
) -> Connection:
    """CONNECT through `proxy`, then TLS with the target inside the tunnel."""
    transport, tunnel = await _connected(
        loop, lambda: _Tunnel(loop), proxy.host, proxy.port, None, None
    )
    try:
        host = f"[{target.host}]" if ":" in target.host else target.host
        authority = f"{host}:{target.port}"
        head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        if proxy.auth is not None:
            head += f"Proxy-Authorization: {proxy.auth}\r\n"
        transport.write((head + "\r\n").encode("ascii"))
        reply = await tunnel.reply
        status_line = reply.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ConnectFailed("the proxy's answer to CONNECT is not HTTP")
        if not parts[1].startswith("2"):
            raise ConnectFailed(f"the proxy refused the tunnel: HTTP {parts[1]}")
        if len(tunnel.data) > len(reply) + 4:
            raise ConnectFailed("the proxy sent bytes before the TLS handshake")
        conn = Connection(loop)
        inner = await loop.start_tls(transport, conn, tls, server_hostname=name)
        if inner is None:
            raise ConnectFailed("the proxy closed the tunnel")
        conn.connection_made(inner)
        return conn
    except BaseException:
        transport.close()
        raise


AddrInfo = tuple[Any, ...]  # getaddrinfo's (family, type, proto, canonname, sockaddr)


async def resolve(host: str, port: int) -> list[AddrInfo]:
    """The addresses of `host`, in the resolver's order (the tests' seam)."""
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)


@lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _connected(
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], Any],
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    name: str | None,
) -> tuple[asyncio.Transport, Any]:
    """A transport to `host`: an IP literal directly, a name on the first of its addresses
    that connects (staggered attempts), then TLS on that one."""
    if _is_ip(host):
        made = await loop.create_connection(factory, host, port, ssl=tls, server_hostname=name)
        return made
    infos = _interleave(await resolve(host, port))
    sock = await _race(loop, infos, HAPPY_EYEBALLS_DELAY)
    try:
        made = await loop.create_connection(factory, sock=sock, ssl=tls, server_hostname=name)
        return made
    except BaseException:
        sock.close()
        raise


def _interleave(infos: list[AddrInfo]) -> list[AddrInfo]:
    """RFC 8305 section 4: the families alternate, the resolver's first family first."""
    if not infos:
        raise OSError("the name has no address")
    first = [i for i in infos if i[0] == infos[0][0]]
    other = [i for i in infos if i[0] != infos[0][0]]
    out: list[AddrInfo] = []
    for n in range(max(len(first), len(other))):
        out += first[n : n + 1] + other[n : n + 1]
    return out


async def _attempt(loop: asyncio.AbstractEventLoop, info: AddrInfo) -> socket.socket:
    sock = socket.socket(info[0], info[1], info[2])
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, info[4])
    except OSError as exc:
        sock.close()
        if exc.errno:  # the system's words ("Connection refused"), as create_connection's
            raise OSError(exc.errno, os.strerror(exc.errno)) from None
        raise
    except BaseException:
        sock.close()
        raise
    return sock


def _close_late(task: asyncio.Task[socket.socket]) -> None:
    """A losing attempt that connected anyway: its socket is closed, not leaked."""
    if not task.cancelled() and task.exception() is None:
        task.result().close()


async def _race(
    loop: asyncio.AbstractEventLoop, infos: list[AddrInfo], delay: float
) -> socket.socket:
    """The first address to connect: one attempt at a time, the next started when the last
    failed or `delay` passed without an answer; the others are cancelled."""
    queue = list(infos)
    pending: set[asyncio.Task[socket.socket]] = set()
    errors: list[BaseException] = []
    try:
        while queue or pending:
            if queue:
                pending.add(loop.create_task(_attempt(loop, queue.pop(0))))
            done, pending = await asyncio.wait(
                pending, timeout=delay if queue else None, return_when=asyncio.FIRST_COMPLETED
            )
            winner = None
            for task in done:
                error = task.exception()
                if error is not None:
                    errors.append(error)
                elif winner is None:
                    winner = task.result()
                else:
                    task.result().close()
            if winner is not None:
                return winner
    finally:
        for task in pending:
            task.cancel()
            task.add_done_callback(_close_late)
    raise errors[0] if errors else OSError("no address connected")
