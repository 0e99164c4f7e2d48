"""The probes' own HTTP/1.1 client (exporter/probes/client.py, h1.py) against raw loopback
servers that write exactly the bytes each case needs: keep-alive reuse, the server's idle
timeout racing a probe, the ways a response can end, and what a hostile server can send."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from exporter.errors import BadResponse, ServerDisconnected, TransportError
from exporter.probes.client import Http1Transport
from exporter.probes.h1 import Connection
from exporter.probes.transport import Timeouts

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
T = Timeouts(read=2.0, connect=2.0)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Raw:
    """A loopback server: `handler(reader, writer, n)` runs per request, n counting from 1 on
    each connection; `connections` counts the connections, `heads` keeps every request head."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")), 0,
                )  # fmt: skip
                await reader.readexactly(length)
                n += 1
                await self.handler(reader, writer, n)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the test is over
        finally:
            writer.close()


@asynccontextmanager
async def raw(handler: Handler) -> AsyncIterator[Raw]:
    server_state = Raw(handler)
    server = await asyncio.start_server(server_state._serve, "127.0.0.1", 0)
    server_state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield server_state
    finally:
        server.close()
        await server.wait_closed()


def answer(data: bytes, close: bool = False) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(data)
        await writer.drain()
        if close:
            writer.close()

    return handler


async def fetch(client: Http1Transport, url: str, **headers: str) -> tuple[int, bytes]:
    async with client.stream("GET", url, headers=headers, timeout=T) as response:
        body = b"".join([chunk async for chunk in response.iter_raw()])
    return response.status_code, body


async def test_one_kept_alive_connection_serves_every_probe() -> None:
    async with raw(answer(OK)) as server, Http1Transport(8) as client:
        results = [await fetch(client, server.url + "/health") for _ in range(5)]
    assert results == [(200, b"ok")] * 5
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_not_a_failure() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1:
            writer.write(OK)  # kept alive, as HTTP/1.1 says...
        else:
            writer.transport.abort()  # ...until the idle timeout closes it as the probe asks

    async with raw(handler) as server, Http1Transport(8) as client:
        assert await fetch(client, server.url) == (200, b"ok")
        assert await fetch(client, server.url) == (200, b"ok")  # asked again on a new one
    assert server.connections == 2


async def test_a_new_connection_closed_without_an_answer_is_the_servers_failure() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.transport.abort()

    async with raw(handler) as server, Http1Transport(8) as client:
        with pytest.raises(ServerDisconnected, match="before answering"):
            await fetch(client, server.url)
    assert server.connections == 1  # not retried: nothing was kept alive


@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n",
         b"ok!!!"),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", b"until the end"),  # closed after it
        (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, b"ok"),  # an interim answer first
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)  # fmt: skip
async def test_each_way_a_body_ends(wire: bytes, body: bytes) -> None:
    close = wire.startswith(b"HTTP/1.0")
    async with raw(answer(wire, close=close)) as server, Http1Transport(8) as client:
        status, got = await fetch(client, server.url)
    assert status in (200, 204) and got == body


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", "malformed HTTP response"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000 + b"\r\n\r\n", "headers exceed"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 300 + b"\r\n", "more than 256"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
         "switched protocols"),
    ],
)  # fmt: skip
async def test_what_is_not_an_http_answer_is_refused(wire: bytes, match: str) -> None:
    async with raw(answer(wire)) as server, Http1Transport(8) as client:
        with pytest.raises(BadResponse, match=match):
            await fetch(client, server.url)


async def test_header_bytes_that_are_not_utf8_are_read_not_fatal() -> None:
    wire = b"HTTP/1.1 200 OK\r\nContent-Type: text/\xff\xfe\r\nContent-Length: 0\r\n\r\n"
    async with (
        raw(answer(wire)) as server,
        Http1Transport(8) as client,
        client.stream("GET", server.url, headers={}, timeout=T) as response,
    ):
        assert response.headers["content-type"] == "text/\xff\xfe"
        assert response.headers.get("CONTENT-LENGTH") == "0"


async def test_a_probe_that_stops_early_leaves_the_connection_reusable() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)  # the probe has what it wanted and let go meanwhile
        writer.write(b"4\r\ntail\r\n0\r\n\r\n")

    async with raw(handler) as server, Http1Transport(8) as client:
        for _ in range(3):
            async with client.stream("GET", server.url, headers={}, timeout=T) as response:
                assert await anext(aiter(response.iter_raw())) == b"first"
            await asyncio.sleep(0.1)  # the tail arrives: the connection goes back to the pool
    assert server.connections == 1


async def test_a_body_that_never_stops_pauses_reading_and_is_closed() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        for _ in range(4000):  # 1 GB announced, 256 MiB offered while nobody reads
            writer.write(b"x" * 65536)
            await writer.drain()

    async with raw(handler) as server, Http1Transport(8) as client:
        async with client.stream("GET", server.url, headers={}, timeout=T) as response:
            first = await anext(aiter(response.iter_raw()))
            await asyncio.sleep(0.2)  # the server writes on; the client must not buffer it all
            buffered = await anext(aiter(response.iter_raw()))
        assert len(first) > 0 and len(buffered) <= 512 * 1024


async def test_the_request_as_the_server_reads_it() -> None:
    async with (
        raw(answer(OK)) as server,
        Http1Transport(8) as client,
        client.stream(
            "POST",
            server.url.replace("http://", "http://user:p%40ss@") + "/v1/chat/completions",
            headers={"X-Team": "a", "accept-encoding": "br"},
            timeout=T,
            json={"model": "m", "text": "é"},
        ) as response,
    ):
        assert response.status_code == 200
    head = server.heads[0].decode()
    lines = head.split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    basic = base64.b64encode(b"user:p@ss").decode()
    assert f"Authorization: Basic {basic}" in lines
    assert "X-Team: a" in lines and "accept-encoding: br" in lines
    assert not [x for x in lines if x.lower().startswith("accept-encoding: identity")]
    assert "Content-Type: application/json" in lines
    assert any(x.startswith("User-Agent: llm-heartbeat/") for x in lines)
    assert f"Host: {server.url.removeprefix('http://')}" in lines


async def test_a_header_with_a_line_break_is_never_written() -> None:
    async with raw(answer(OK)) as server, Http1Transport(8) as client:
        with pytest.raises(TransportError, match="not valid"):
            await fetch(client, server.url, **{"X-A": "1\r\nX-Injected: 2"})
    assert server.heads == []


def test_it_runs_on_uvloop_as_shipped() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> tuple[tuple[int, bytes], int]:
        async with raw(answer(OK)) as server, Http1Transport(8) as client:
            got = await fetch(client, server.url)
            return got, server.connections

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == ((200, b"ok"), 1)


async def test_a_server_that_closes_as_it_accepts_is_seen_at_once_not_at_the_deadline() -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # a balancer with no backend: accepts, then hangs up

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        _, conn = await loop.create_connection(lambda: Connection(loop), "127.0.0.1", port)
        for _ in range(200):  # the hang-up arrives before the request is written
            if conn.closed:
                break
            await asyncio.sleep(0.01)
        assert conn.closed
        conn.begin()
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ServerDisconnected, match="before answering"):
            await conn.wait(30.0)  # at once: no byte will ever come
    finally:
        server.close()
        await server.wait_closed()


# ---- what the pool and the parser must refuse (each would survive a mutation otherwise) -----
@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000,  # one header line that never ends
        b"HTTP/1.1 100 Continue\r\n\r\n" * 5000,  # interim answers without end, no headers
    ],
)
async def test_a_head_that_never_ends_is_refused_at_64_kib_not_at_the_timeout(wire: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(wire)
        await writer.drain()
        await asyncio.sleep(30)  # and nothing more: only the size can end it

    async with raw(handler) as server, Http1Transport(8) as client:
        with pytest.raises(BadResponse, match="headers exceed 65536 bytes"):
            await fetch(client, server.url)


async def test_idle_connections_the_server_closed_are_never_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # an idle timeout far shorter than the client's

    async with raw(handler) as server, Http1Transport(8) as client:
        first = await asyncio.gather(fetch(client, server.url), fetch(client, server.url))
        assert first == [(200, b"ok")] * 2 and server.connections == 2  # two kept idle
        await asyncio.sleep(0.3)  # both closed meanwhile: neither may be tried (the one
        assert await fetch(client, server.url) == (200, b"ok")  # retry would not save two)
    assert server.connections == 3


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",  # 1.0: close unless keep-alive
    ],
)
async def test_a_response_that_says_close_is_never_reused(wire: bytes) -> None:
    async with raw(answer(wire)) as server, Http1Transport(8) as client:  # the socket stays open
        assert [await fetch(client, server.url) for _ in range(2)] == [(200, b"ok")] * 2
    assert server.connections == 2


async def test_a_second_response_to_one_request_is_never_read() -> None:
    second = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
    async with raw(answer(OK + second)) as server, Http1Transport(8) as client:
        assert await fetch(client, server.url) == (200, b"ok")
        assert await fetch(client, server.url) == (200, b"ok")
    assert server.connections == 2  # the connection that carried it was not trusted again
