"""The probes' fast path: each request goes straight to the aiohttp session under
httpx-aiohttp's transport, skipping httpx's client layers (URL and header models, the auth,
redirect and cookie machinery, the response model). Those layers cost about twice aiohttp's
own work per request (bench/transport.py); the probes keep httpx's API (`stream`,
`status_code`, `headers`, `aiter_raw`), and tests keep respx through a plain httpx client.

Failures go through httpx-aiohttp's own exception map, so a failed probe reads exactly as it
does through httpx (`map_exception` sees the same exceptions)."""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp import ClientResponse, ClientSession, ClientTimeout
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from multidict import CIMultiDict

__all__ = ["DirectPath", "DirectResponse"]

CHUNK_SIZE = 16 * 1024  # as httpx-aiohttp reads


class DirectResponse:
    """The part of httpx.Response the probes use, over an aiohttp response."""

    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = response.headers  # case-insensitive, .get() like httpx.Headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        with map_aiohttp_exceptions():
            async for chunk in self._response.content.iter_chunked(CHUNK_SIZE):
                yield chunk


class DirectPath:
    """`stream()` on the transport's aiohttp session, with the client's default headers."""

    def __init__(self, transport: AiohttpTransport, headers: httpx.Headers) -> None:
        self.transport = transport
        self.headers = CIMultiDict(headers.multi_items())
        self._timeouts: dict[tuple[Any, ...], ClientTimeout] = {}

    def _session(self) -> ClientSession:
        client = self.transport.client
        if not isinstance(client, ClientSession):
            client = self.transport.client = self.transport.get_client()
        return client

    def _timeout(self, timeout: httpx.Timeout) -> ClientTimeout:
        # what httpx-aiohttp makes of an httpx.Timeout
        key = (timeout.connect, timeout.read, timeout.pool)
        found = self._timeouts.get(key)
        if found is None:
            found = ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
            if len(self._timeouts) < 256:
                self._timeouts[key] = found
        return found

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        timeout: httpx.Timeout,
        json: Any = None,
    ) -> AsyncIterator[DirectResponse]:
        merged = self.headers.copy()
        merged.update(headers)  # case-insensitive, the request's win, as in httpx
        data = None
        if json is not None:  # httpx's JSON encoding and Content-Type default
            data = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            merged.setdefault("Content-Type", "application/json")
        with map_aiohttp_exceptions():
            response = await (
                self._session()
                .request(
                    method,
                    url,
                    headers=merged,
                    data=data,
                    allow_redirects=False,
                    auto_decompress=False,
                    compress=False,
                    timeout=self._timeout(timeout),
                )
                .__aenter__()
            )
        try:
            yield DirectResponse(response)
        finally:
            with map_aiohttp_exceptions():
                await response.__aexit__(None, None, None)
