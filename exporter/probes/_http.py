"""HTTP plumbing shared by the probes: the client, bounded reads, and the one place where
transport exceptions become failure reasons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from exporter.config import TargetConfig
from exporter.errors import BodyTooLarge
from exporter.probes._direct import DirectPath
from exporter.probes.results import Reason
from exporter.util.http import USER_AGENT

__all__ = [
    "USER_AGENT",
    "BodyTooLarge",
    "ProbeClient",
    "ProbeContext",
    "make_client",
    "map_exception",
    "open_stream",
    "read_bounded",
    "request_headers",
]


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Everything one probe needs: the client, the target, the model to expect, the deadline."""

    client: httpx.AsyncClient
    target: TargetConfig
    timeout: float
    model: str | None = None


class _Cookies(httpx.Cookies):
    """httpx runs every response through urllib's cookie machinery, about a fifth of a probe's
    client-side CPU (bench/transport.py); a response without Set-Cookie cannot change the jar
    (`CookieJar.make_cookies` reads only those two headers), so it is skipped."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class ProbeClient(httpx.AsyncClient):
    """httpx's AsyncClient with the cookie jar above, plus (from make_client) the direct path
    the probes take through `open_stream`; otherwise unchanged."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cookies = _Cookies(self._cookies)
        self.direct: DirectPath | None = None  # set by make_client on the aiohttp transport

    @property
    def cookies(self) -> httpx.Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = _Cookies(cookies)


def make_client(max_connections: int = 256, *, transport: str = "aiohttp") -> ProbeClient:
    """An httpx client on aiohttp's transport (several times cheaper per request, see bench/).

    transport: "aiohttp" (default): probes go the direct path on the transport's aiohttp
    session (exporter/probes/_direct.py), everything else through httpx; "httpx-aiohttp":
    all through httpx on httpx-aiohttp; "httpx": httpx's own transport.
    Redirects are not followed and nothing is decompressed: a probe sees what the server sent.
    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    tr: httpx.AsyncBaseTransport
    if transport in ("aiohttp", "httpx-aiohttp"):
        tr = AiohttpTransport(limits=limits, trust_env=False)
    elif transport == "httpx":
        tr = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    else:
        raise ValueError(f"unknown transport {transport!r}")
    client = ProbeClient(
        transport=tr,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        follow_redirects=False,
        trust_env=False,
    )
    if transport == "aiohttp":
        client.direct = DirectPath(tr, client.headers)
    return client


def open_stream(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    timeout: httpx.Timeout,
    json: Any = None,
) -> AbstractAsyncContextManager[Any]:
    """`client.stream(...)`, or the direct path when the client has one (make_client's).
    The response has httpx's `status_code`, `headers` and `aiter_raw()` either way."""
    direct = getattr(client, "direct", None)
    if direct is not None:
        return direct.stream(method, url, headers=headers, timeout=timeout, json=json)
    if json is None:
        return client.stream(method, url, headers=headers, timeout=timeout)
    return client.stream(method, url, json=json, headers=headers, timeout=timeout)


def request_headers(target: TargetConfig, *, auth: bool) -> dict[str, str]:
    headers = dict(target.headers)
    headers["User-Agent"] = USER_AGENT
    if auth:
        key = target.resolve_api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
    return headers


def timeouts(total: float) -> httpx.Timeout:
    return httpx.Timeout(total, connect=min(total, 5.0))


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """Read the body, refusing more than `limit` bytes (a declared or actual oversize)."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"Content-Length {declared} exceeds the {limit}-byte limit")
    buf = bytearray()
    async for chunk in _raw(response):
        buf += chunk
        if len(buf) > limit:
            raise BodyTooLarge(f"body exceeds the {limit}-byte limit")
    return bytes(buf)


async def iter_bounded(response: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    """Yield raw chunks, raising BodyTooLarge once more than `limit` bytes arrived."""
    total = 0
    async for chunk in _raw(response):
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(f"stream exceeds the {limit}-byte limit")
        yield chunk


async def _raw(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as sent (no decoding); a body that a mock already loaded is yielded whole."""
    if hasattr(response, "_content"):
        yield response.content
        return
    async for chunk in response.aiter_raw():
        yield chunk


def map_exception(exc: BaseException, *, streaming: bool = False) -> tuple[Reason, str]:
    """Translate a transport exception into (reason, short detail). The only such place.

    httpx-aiohttp maps every aiohttp connection error to ConnectTimeout, including a server
    that hung up mid-response, so the original aiohttp exception is looked at first.
    """
    cause = exc.__cause__
    if isinstance(exc, BodyTooLarge):
        return Reason.BODY_TOO_LARGE, str(exc)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return Reason.TIMEOUT, "deadline exceeded"
    if isinstance(cause, aiohttp.ClientConnectorError) or isinstance(exc, httpx.ConnectError):
        return Reason.CONNECT_ERROR, _short(cause or exc, "connection failed")
    if isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return Reason.TIMEOUT, _short(cause, "timed out")
    if isinstance(
        cause, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientOSError
    ) or isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        reason = Reason.STREAM_INCOMPLETE if streaming else Reason.INVALID_RESPONSE
        return reason, _short(cause or exc, "connection closed by the server")
    if isinstance(cause, aiohttp.ClientResponseError):
        return Reason.INVALID_RESPONSE, _short(cause, "malformed HTTP response")
    if isinstance(exc, httpx.TimeoutException):
        return Reason.TIMEOUT, _short(exc, "timed out")
    if isinstance(exc, httpx.TransportError):
        return Reason.CONNECT_ERROR, _short(exc, "transport error")
    if isinstance(exc, UnicodeDecodeError):
        return Reason.INVALID_RESPONSE, "body is not valid UTF-8"
    return Reason.INVALID_RESPONSE, f"{type(exc).__name__}"


def _short(exc: BaseException, fallback: str) -> str:
    text = str(exc).strip() or fallback
    return f"{type(exc).__name__}: {text}"[:200]
