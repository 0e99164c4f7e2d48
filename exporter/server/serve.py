"""How the exporter's HTTP server is run: bounded connections, a deadline for request headers,
the peer address from the socket only, and as many file descriptors as the system allows.

A slowloris client (thousands of connections that never finish a request) must not take
/metrics away from Prometheus, spin a core in the accept loop or flood the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "HEADER_TIMEOUT",
    "MAX_CONNECTIONS",
    "guarded_protocol",
    "raise_nofile",
    "serve_then",
    "server_config",
]

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0  # seconds a connection may take to send a request's headers
MAX_CONNECTIONS = 1000  # open client connections; past it the oldest idle one is closed
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open (uvicorn's default)


def guarded_protocol(header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with two limits it lacks: a connection that has not sent a
    request's headers within `header_timeout` is closed (uvicorn's keep-alive timer stops
    at the first byte, and it has none before the first request), and past
    `max_connections` a new connection closes the oldest one without a request in flight
    (so an attacker's idle sockets, not Prometheus's next scrape, are what is dropped)."""

    # this server's connections, oldest first (the eviction order)
    opened: OrderedDict[GuardedH11Protocol, None] = OrderedDict()

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self.header_deadline: asyncio.TimerHandle | None = None
            self.arm_header_deadline()
            opened[self] = None
            if len(opened) > max_connections:
                self.evict_oldest_idle()

        def connection_lost(self, exc: Exception | None) -> None:
            opened.pop(self, None)
            if self.header_deadline is not None:
                self.header_deadline.cancel()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.arm_header_deadline()  # the next request's headers get the same deadline

        def arm_header_deadline(self) -> None:
            if self.header_deadline is not None:
                self.header_deadline.cancel()
            waiting_for = self.cycle  # a new request replaces the cycle
            self.header_deadline = self.loop.call_later(
                header_timeout, self.headers_overdue, waiting_for
            )

        def headers_overdue(self, waiting_for: Any) -> None:
            if self.cycle is waiting_for and not self.transport.is_closing():
                self.drop()

        def idle(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def drop(self) -> None:
            """Close now, and leave the eviction order at once (connection_lost comes a
            loop turn later: a burst of new connections must not all pick this one)."""
            opened.pop(self, None)
            self.transport.close()

        def evict_oldest_idle(self) -> None:
            for conn in opened:  # oldest first; usually the first is idle
                if conn is not self and conn.idle():
                    conn.drop()
                    return
            self.drop()  # every other connection is serving a request: refuse this one

    return GuardedH11Protocol


def server_config(
    app: Any,
    host: str,
    port: int,
    *,
    header_timeout: float = HEADER_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> uvicorn.Config:
    """The uvicorn config `run` (and the tests) serve the exporter with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(header_timeout, max_connections),
        # requests in flight past this answer 503 at once instead of queueing (above the
        # connection bound: a closed connection leaves uvicorn's count a moment later)
        limit_concurrency=max_connections + 16,
        timeout_keep_alive=KEEP_ALIVE,
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers
        proxy_headers=False,  # the peer address is the socket's, never a header's
        server_header=False,
        log_config=None,
        access_log=False,
        lifespan="off",
    )


async def serve_then(server: uvicorn.Server, start: Callable[[], Awaitable[None]]) -> None:
    """Serve, and once the socket listens run `start()` beside it: a slow discovery source must
    not keep /metrics and /-/healthy away (/-/ready answers 503 until the targets are
    scheduled), and a stop while it is still starting ends the start too."""
    serving = asyncio.ensure_future(server.serve())
    starting: asyncio.Future[None] | None = None
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            starting = asyncio.ensure_future(start())
            await asyncio.wait({serving, starting}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # its error, if any, ends the run
        await serving
    finally:
        if starting is not None and not starting.done():
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
        server.should_exit = True
        with contextlib.suppress(BaseException):  # its own error was raised above
            await serving


def raise_nofile() -> tuple[int, int]:
    """Raise the soft open-files limit to the hard one (systemd's soft default is 1024: a
    thousand idle connections would leave no descriptor for the probes). Returns the
    (soft, hard) limits now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and hard != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, exc)
    return soft, hard
