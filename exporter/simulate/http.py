"""A small HTTP/1.1 server layer on asyncio streams.

Why not a framework: the simulator must misbehave at the byte level (never answer, drip
bytes, cut a chunked body short, stop listening) and stay cheap enough to run thousands of
targets in one process. This module does only the correct, boring part: request parsing
with keep-alive, Content-Length and chunked request bodies, and fixed-length or chunked
responses.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

__all__ = ["HttpError", "Request", "ResponseWriter", "read_request"]

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024


class HttpError(Exception):
    """A request that cannot be parsed; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    """One parsed HTTP request; header names are lower-case."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    peer: str = ""
    path: str = field(init=False)
    query: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path or "/"
        self.query = parse_qs(parts.query)

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise HttpError(400, "invalid chunk size") from exc
        if size == 0:
            # Trailers (ignored) end with an empty line.
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise HttpError(413, "body too large")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError(400, "invalid chunk terminator")


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
) -> Request | None:
    """Read one request; None on a clean end of connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "incomplete request head") from exc
    except asyncio.LimitOverrunError as exc:
        raise HttpError(431, "request head too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError as exc:
        raise HttpError(400, "invalid request line") from exc
    if not version.startswith("HTTP/1."):
        raise HttpError(505, "HTTP version not supported")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, "invalid header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as exc:
            raise HttpError(400, "invalid Content-Length") from exc
        if length < 0:
            raise HttpError(400, "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise HttpError(413, "body too large")
        body = await reader.readexactly(length)
    return Request(method, target, version, headers, body, peer)


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """The Date header value, formatted at most once a second (it is on every response)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class ResponseWriter:
    """Writes one response, fixed-length or chunked, optionally dripping bytes slowly.

    `drip` = (seconds between pieces, bytes per piece) turns every write into a trickle,
    which is how the `drip` fault is felt by a client.
    """

    def __init__(self, writer: asyncio.StreamWriter, keep_alive: bool) -> None:
        self._writer = writer
        self.keep_alive = keep_alive
        self.started = False
        self.finished = False
        self.status = 0
        self.drip: tuple[float, int] | None = None

    async def _write(self, data: bytes) -> None:
        if self.drip is None:
            self._writer.write(data)
            await self._writer.drain()
            return
        delay, size = self.drip
        for i in range(0, len(data), size):
            self._writer.write(data[i : i + size])
            await self._writer.drain()
            await asyncio.sleep(delay)

    def _head(self, status: int, headers: list[tuple[str, str]], extra: bytes) -> bytes:
        self.status = status
        lines = [f"HTTP/1.1 {status} {_reason(status)}".encode()]
        lines.append(b"date: " + _http_date())
        lines.append(b"server: uvicorn")
        lines.extend(f"{k}: {v}".encode("latin-1") for k, v in headers)
        if not self.keep_alive:
            lines.append(b"connection: close")
        return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"

    async def send(self, status: int, body: bytes = b"", content_type: str | None = None) -> None:
        """A complete response with Content-Length."""
        headers: list[tuple[str, str]] = [("content-length", str(len(body)))]
        if content_type:
            headers.append(("content-type", content_type))
        self.started = True
        await self._write(self._head(status, headers, b"") + body)
        self.finished = True

    async def start_stream(self, status: int, content_type: str) -> None:
        """Headers of a chunked response; body pieces follow with `write_chunk`."""
        self.started = True
        headers = [("content-type", content_type), ("transfer-encoding", "chunked")]
        await self._write(self._head(status, headers, b""))

    async def write_chunk(self, data: bytes) -> None:
        if data:
            await self._write(b"%x\r\n%s\r\n" % (len(data), data))

    async def end_stream(self) -> None:
        await self._write(b"0\r\n\r\n")
        self.finished = True

    async def flush(self) -> None:
        await self._writer.drain()
