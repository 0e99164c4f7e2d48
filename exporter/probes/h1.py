"""One HTTP/1.1 client connection on asyncio, its response parsed by httptools (llhttp, the
parser of Node.js, in C): the probes' wire (transport.py keeps the pool and builds requests).

Why not a client library here: the probes do one thing, many thousand times a minute: send a
request the exporter wrote, read the status, a few headers and a bounded body, and keep the
connection for the next probe. aiohttp's general client spent more CPU on that than the rest of
a probe together (bench/transport.py; README "Stack choices"). What a hostile target can send
is bounded here: the status line and headers (MAX_HEADER_BYTES, MAX_HEADERS), the body buffered
ahead of the reader (reading pauses at HIGH_WATER); the body's total is the probes' cap
(iter_bounded, read_capped). No redirect is followed (decoding a compressed body: decode.py)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import httptools

from exporter.errors import BadResponse, ConnectFailed, ReadTimeout, ServerDisconnected
from exporter.probes.tls import tls_words

__all__ = ["Connection", "Headers"]

MAX_HEADER_BYTES = 64 * 1024  # the status line and headers of one response
MAX_HEADERS = 256
HIGH_WATER = 256 * 1024  # body bytes buffered ahead of the reader before reading pauses
DRAIN_BYTES = 64 * 1024  # what a connection may still read after its probe is done


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; the first of a repeated field wins."""

    __slots__ = ("_fields",)

    def __init__(self, pairs: list[tuple[bytes, bytes]]) -> None:
        fields: dict[str, str] = {}
        for name, value in pairs:
            fields.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        self._fields = fields

    def __getitem__(self, key: str) -> str:
        return self._fields[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:
        return self._fields.get(key.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class Connection(asyncio.Protocol):
    """A keep-alive connection that carries one exchange at a time. The httptools callbacks
    (`on_*`) fill the current response; the reader awaits `wait()`. `on_idle` is called when a
    response ended cleanly after its reader let go (`drain`), so the pool can take it back."""

    __slots__ = (
        "_buffered", "_draining", "_fields", "_header_bytes", "_keep_alive", "_parser",
        "_refused", "_until_eof", "_waiter", "chunks", "closed", "complete", "error", "headers",
        "idle_since", "key", "loop", "on_idle", "received", "status", "transport",
    )  # fmt: skip  # thousands are kept alive: no __dict__ each

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.key: Any = None  # the pool's
        self.on_idle: Callable[[Connection], None] | None = None  # the pool's, while draining
        self._waiter: asyncio.Future[None] | None = None
        # a parser only while an exchange is on: ~600 bytes with its callbacks, times every
        # idle kept-alive connection (thousands)
        self._parser: Any = None
        self._clear()

    # ---- the current exchange ----------------------------------------------------------
    def begin(self) -> None:
        """Forget the previous response (the connection is about to carry a new request)."""
        self._parser = httptools.HttpResponseParser(self)
        self._clear()

    def _clear(self) -> None:
        self.status = 0
        self.headers: Headers | None = None
        self.complete = False
        self.received = 0  # bytes of the current response so far
        self.error: BaseException | None = None
        self.chunks: list[bytes] = []  # a list: an idle deque keeps a 600-byte block
        self._buffered = 0
        self._fields: list[tuple[bytes, bytes]] = []
        self._until_eof = False
        self._draining = False
        self._keep_alive = False
        self._header_bytes = 0
        self._refused: BadResponse | None = None

    def rest(self) -> None:
        """Idle in the pool: keep nothing of the last exchange."""
        self._parser = None
        self.headers = None

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    @property
    def reusable(self) -> bool:
        return self.complete and self._keep_alive and not self.closed

    async def wait(self, timeout: float | None) -> None:
        """Until more of the response arrived (or it ended, or failed); ReadTimeout after
        `timeout` seconds without a byte."""
        if self.closed and not self.complete:  # lost before this exchange began, or during it
            raise self.error or ServerDisconnected(_lost(None, self.received))
        waiter = self._waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, self._late, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None and not self.chunks:
            raise self.error

    def _late(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(ReadTimeout("no bytes from the server within the read timeout"))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> bytes:
        """Every body byte buffered so far, as one piece (reading resumes if it had paused)."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if self._buffered >= HIGH_WATER and self.transport is not None and not self.closed:
            self.transport.resume_reading()
        self._buffered = 0
        return data

    def drain(self) -> bool:
        """The reader is done before the response ended: keep reading (a little) so the
        connection can serve the next probe. False: not worth it, close it."""
        if self.closed or self.error is not None or self._until_eof or self.headers is None:
            return False
        self.chunks.clear()
        self._buffered = 0
        self._draining = True
        return True

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.close()
        self.closed = True

    def _fail(self, error: BaseException) -> None:
        if self.error is None and not self.complete:
            self.error = error
        self.close()
        self._wake()

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one, not a subclass

    def data_received(self, data: bytes) -> None:
        if self.complete or self._parser is None:  # bytes nobody asked for: not to be trusted
            self.close()
            return
        self.received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadResponse("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(self._refused or BadResponse(f"malformed HTTP response: {_clip(exc)}"))
        if self._parser is not None and self.headers is None and self.received > MAX_HEADER_BYTES:
            self._fail(BadResponse(f"response headers exceed {MAX_HEADER_BYTES} bytes"))
        if self._draining and self.received > DRAIN_BYTES:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            if self._until_eof and self.error is None and exc is None:
                self.complete = True  # a body delimited by the end of the connection (a
                # clean close: a reset, or a TLS session cut without its close_notify, may
                # have cut it short)
            elif isinstance(exc, ssl.SSLError):
                self._fail(ConnectFailed(tls_words(exc)))  # e.g. a client certificate refused
            else:
                self._fail(ServerDisconnected(_lost(exc, self.received)))
        self._wake()

    def eof_received(self) -> bool | None:
        return None  # close the transport: a half-closed server sends nothing more

    # ---- httptools callbacks ---------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:  # a second response to one request: nothing here can be trusted
            raise BadResponse("the server sent more than one response")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if len(self._fields) >= MAX_HEADERS:
            self._refused = BadResponse(f"more than {MAX_HEADERS} response headers")
        elif self._header_bytes > MAX_HEADER_BYTES:
            self._refused = BadResponse(f"response headers exceed {MAX_HEADER_BYTES} bytes")
        if self._refused is not None:
            raise self._refused  # httptools stops parsing (and wraps it: data_received unwraps)
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103): the real one follows
            self._fields = []
            return
        self.status = status
        self.headers = Headers(self._fields)
        self._fields = []
        self._until_eof = (
            self.headers.get("content-length") is None
            and "chunked" not in self.headers.get("transfer-encoding", "").lower()
            and status not in (204, 304)
        )
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._draining:
            return
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered >= HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers is None:  # the end of an interim answer
            return
        self.complete = True
        self._keep_alive = self._parser.should_keep_alive()  # asked before the parser resets
        self.idle_since = self.loop.time()
        if self._draining:
            self._draining = False
            if self.on_idle is not None and self.reusable:
                self.on_idle(self)
            else:
                self.close()
        self._wake()


def _clip(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:120]


def _lost(exc: Exception | None, received: int) -> str:
    when = "before answering" if not received else "before the response ended"
    if exc is None:
        return f"the server closed the connection {when}"
    return f"the connection was lost {when}: {_clip(exc)}"
