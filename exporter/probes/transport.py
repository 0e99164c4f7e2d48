"""The probes' one HTTP transport: the small protocol the probes call (`stream()` a request,
read `status_code`, `headers`, `iter_raw()`), and its one implementation on aiohttp, used in
production and in the tests (against real local servers). Public aiohttp API only.

aiohttp rather than httpx: about a third of httpx's client-side CPU per request
(bench/transport.py). Redirects are not followed, nothing is decompressed and no cookie is
kept: a probe sees what the server sent, and one probe never changes the next."""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, NamedTuple, Protocol

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from exporter.util.http import USER_AGENT

__all__ = [
    "USER_AGENT",
    "AiohttpTransport",
    "ProbeResponse",
    "Timeouts",
    "Transport",
    "make_client",
    "timeouts",
]

CHUNK_SIZE = 16 * 1024
URL_CACHE = 65536  # parsed URLs kept (a probe asks the same few paths of each target)


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
    ) -> AbstractAsyncContextManager[ProbeResponse]: ...

    async def aclose(self) -> None: ...


class _Response:
    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers: Mapping[str, str] = response.headers

    async def iter_raw(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_chunked(CHUNK_SIZE):
            yield chunk


class _Exchange(AbstractAsyncContextManager[ProbeResponse]):
    """One request as a context manager: aiohttp's own, its response wrapped (a plain class,
    not a generator: this is entered once per probe)."""

    __slots__ = ("_request",)

    def __init__(self, request: AbstractAsyncContextManager[aiohttp.ClientResponse]) -> None:
        self._request = request

    async def __aenter__(self) -> ProbeResponse:
        return _Response(await self._request.__aenter__())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._request.__aexit__(exc_type, exc, tb)


class AiohttpTransport:
    """The Transport on one aiohttp session (created on first use, inside the event loop),
    with a pool of `max_connections` keep-alive connections."""

    def __init__(self, max_connections: int = 256) -> None:
        self.max_connections = max_connections
        self.headers = CIMultiDict({"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, URL] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0),
                headers=self.headers,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
            )
        return self._session

    def _timeout(self, timeout: Timeouts) -> aiohttp.ClientTimeout:
        found = self._timeouts.get(timeout)
        if found is None:
            found = aiohttp.ClientTimeout(
                total=None,
                connect=timeout.read,  # waiting for a pooled connection
                sock_connect=timeout.connect,
                sock_read=timeout.read,
            )
            if len(self._timeouts) < 256:
                self._timeouts[timeout] = found
        return found

    def _url(self, url: str) -> URL:
        """The parsed URL (parsing it is a good share of aiohttp's work per request)."""
        found = self._urls.get(url)
        if found is None:
            if len(self._urls) >= URL_CACHE:
                self._urls.clear()
            try:
                found = URL(url)
            except ValueError as exc:  # as aiohttp itself reports it
                raise aiohttp.InvalidURL(url) from exc
            self._urls[url] = found
        return found

    def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: Timeouts,
        json: Any = None,
    ) -> AbstractAsyncContextManager[ProbeResponse]:
        data = None
        request_headers = dict(headers)
        if json is not None:
            data = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            if not any(k.lower() == "content-type" for k in request_headers):
                request_headers["Content-Type"] = "application/json"
        return _Exchange(
            self._get_session().request(
                method,
                self._url(url),
                headers=request_headers,
                data=data,
                allow_redirects=False,
                compress=None,
                timeout=self._timeout(timeout),
            )
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AiohttpTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def make_client(max_connections: int = 256) -> AiohttpTransport:
    """The probes' transport (the scheduler's and /probe's each have their own pool)."""
    return AiohttpTransport(max_connections)
