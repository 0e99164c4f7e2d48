"""The seam between the probes and HTTP: the small protocol the probes call (`stream()` a
request, read `status_code`, `headers`, `iter_raw()`). Its one implementation is
probes/client.py, used in production and in the tests (against real local servers)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple, Protocol

__all__ = ["ProbeResponse", "Proxy", "Route", "Timeouts", "Transport", "timeouts"]


class Proxy(NamedTuple):
    """An HTTP proxy: where it listens, and the Proxy-Authorization its URL's credentials give."""

    host: str
    port: int
    auth: str | None


class Route(NamedTuple):
    """How to reach a target beyond its URL (probes/route.py builds it from the target's
    config): the TLS context to verify it with and the name to verify, and a proxy. None in
    place of a Route: direct, verified against the system store."""

    tls: ssl.SSLContext | None = None
    server_name: str | None = None
    proxy: Proxy | None = None


class Timeouts(NamedTuple):
    """Per request: `connect` bounds the TCP connect, `read` each wait for bytes. The probe's
    total deadline is `asyncio.timeout` around it (probes/_base.py)."""

    read: float
    connect: float


def timeouts(total: float) -> Timeouts:
    return Timeouts(read=total, connect=min(total, 5.0))


class ProbeResponse(Protocol):
    """What a probe reads of a response."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # case-insensitive

    def iter_raw(self) -> AsyncIterator[bytes]: ...


class Transport(Protocol):
    """What a probe calls. Errors are the implementation's own; `map_exception` in
    probes/_http.py is the one place that turns them into a Reason."""

    def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: Timeouts,
        json: Any = None,
        route: Route | None = None,
    ) -> AbstractAsyncContextManager[ProbeResponse]: ...

    async def aclose(self) -> None: ...
