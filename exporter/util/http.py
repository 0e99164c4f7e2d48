"""The one HTTP client factory for everything that is not a probe (discovery HTTP-SD,
notifications, recovery actions, the re-probe's read of a server's /metrics), and the one
bounded body read.

Policy, the same for all of them:
- proxies: none from the environment (`trust_env=False`): HTTP(S)_PROXY, NO_PROXY and ~/.netrc
  are not read, so a bearer token or a restart call never takes a detour nobody configured
  (the probes do the same);
- redirects: not followed (a 3xx is an answer; a redirect could carry headers elsewhere);
- TLS: verified against the system store, or a given CA bundle (`ca_file`).
"""

from __future__ import annotations

import ssl
import zlib
from collections.abc import AsyncIterable
from pathlib import Path
from typing import TYPE_CHECKING

from exporter import __version__
from exporter.errors import BodyTooLarge, InputError

if TYPE_CHECKING:  # httpx is imported where a client is made: not at start (~3 MiB)
    import httpx

__all__ = ["USER_AGENT", "http_client", "read_capped", "read_decoded"]

USER_AGENT = f"llm-heartbeat/{__version__}"


def http_client(
    *,
    timeout: float | None,
    ca_file: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str = "",
) -> httpx.AsyncClient:
    """An httpx client with the policy above; use it as `async with`. `timeout` None: the
    caller bounds the whole exchange itself (asyncio.timeout)."""
    import httpx  # here, not at start: many exporters never make one

    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        verify = ssl.create_default_context(cafile=str(ca_file))
    return httpx.AsyncClient(
        timeout=timeout,
        verify=verify,
        trust_env=False,
        follow_redirects=False,
        transport=transport,
        base_url=base_url,
        headers={"User-Agent": USER_AGENT},
    )


async def read_capped(
    chunks: AsyncIterable[bytes], limit: int, declared: str | None = None
) -> bytes:
    """The whole body, refusing more than `limit` bytes: at once when the declared
    Content-Length says so, else as soon as the bytes arrive (nothing past the cap is kept)."""
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge(
            f"Content-Length {declared.strip()} exceeds the {limit}-byte limit", limit
        )
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body exceeds the {limit}-byte limit", limit)
    return bytes(body)


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def read_decoded(response: httpx.Response, limit: int) -> bytes:
    """A streamed response's body, decoded (gzip, deflate) by us with the cap applied as it
    decodes: `limit` bounds what is received and what is decoded, so a gzip bomb (64 MiB in
    64 KiB) costs `limit` bytes, not 64 MiB (httpx decodes each received chunk whole)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    declared = response.headers.get("content-length")
    if encoding in ("", "identity"):
        return await read_capped(response.aiter_raw(), limit, declared)
    if encoding not in _WBITS:
        raise InputError(f"Content-Encoding {encoding[:40]!r} is not supported")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"Content-Length {declared.strip()} exceeds the {limit}-byte limit")
    inflate = zlib.decompressobj(_WBITS[encoding])
    body = bytearray()
    received = 0
    try:
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > limit:
                raise BodyTooLarge(f"body exceeds the {limit}-byte limit", limit)
            while chunk:
                body += inflate.decompress(chunk, limit + 1 - len(body))
                if len(body) > limit:
                    raise BodyTooLarge(f"decoded body exceeds the {limit}-byte limit", limit)
                chunk = inflate.unconsumed_tail
        body += inflate.flush(limit + 1 - len(body))
    except zlib.error:
        raise InputError(f"the body is not valid {encoding}") from None
    if len(body) > limit:
        raise BodyTooLarge(f"decoded body exceeds the {limit}-byte limit", limit)
    return bytes(body)
