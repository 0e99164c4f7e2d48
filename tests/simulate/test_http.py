"""The HTTP layer at byte level: keep-alive, pipelining, chunked request bodies, errors."""

from __future__ import annotations

import asyncio
import json

from exporter.simulate import Simulator
from tests.simulate.conftest import PROBE_BODY


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {
        k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    return lines[0].encode(), headers, body


async def test_pipelined_requests_on_one_connection(sim: Simulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    payload = json.dumps(PROBE_BODY).encode()
    post = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
    )
    writer.write(
        b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
        + post
        + b"GET /version HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    await writer.drain()
    status1, _, body1 = await _read_response(reader)
    status2, _, body2 = await _read_response(reader)
    status3, _, body3 = await _read_response(reader)
    assert status3 == b"HTTP/1.1 200 OK"
    assert (status1, body1) == (b"HTTP/1.1 200 OK", b"")
    assert status2 == b"HTTP/1.1 200 OK"
    assert json.loads(body2)["choices"][0]["message"]["content"] == "Paris"
    assert "version" in json.loads(body3)
    writer.close()


async def test_chunked_request_body_and_streamed_response(sim: Simulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    payload = json.dumps({**PROBE_BODY, "stream": True}).encode()
    half = len(payload) // 2
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        half,
        payload[:half],
        len(payload) - half,
        payload[half:],
    )
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + chunked
    )
    await writer.drain()
    status, headers, body = await _read_response(reader)
    assert status == b"HTTP/1.1 200 OK"
    assert headers["transfer-encoding"] == "chunked"
    assert body.endswith(b"data: [DONE]\n\n")
    writer.close()


async def test_http10_and_connection_close(sim: Simulator) -> None:
    for request in (
        b"GET /health HTTP/1.0\r\n\r\n",
        b"GET /health HTTP/1.1\r\nconnection: close\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)  # server closes: read() returns
        assert data.startswith(b"HTTP/1.1 200 OK")
        writer.close()


async def test_malformed_request_gets_400_and_close(sim: Simulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"NONSENSE\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    assert data.startswith(b"HTTP/1.1 400 ")
    writer.close()
