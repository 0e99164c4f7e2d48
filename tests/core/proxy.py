"""A small HTTP proxy on 127.0.0.1 for the tests: CONNECT tunnels (https through a proxy) and
absolute-form requests (http through a proxy), as squid or a corporate proxy serves them.
Every name resolves to 127.0.0.1 here, so a target named `model.test` is reached only through
it. `seen` keeps each request head; `auth` (a Proxy-Authorization value) is required when set."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

__all__ = ["Proxy", "running_proxy"]


class Proxy:
    def __init__(self, auth: str | None) -> None:
        self.auth = auth
        self.seen: list[str] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            self.seen.append(head)
            method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
            lines = head.split("\r\n")[1:]
            given = next(
                (x.split(":", 1)[1].strip() for x in lines
                 if x.lower().startswith("proxy-authorization:")), None,
            )  # fmt: skip
            if self.auth is not None and given != self.auth:
                # a careless proxy echoes the login it refused
                body = json.dumps({"error": f"proxy login refused: {given}"}).encode()
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
                await writer.drain()
                return
            if method == "CONNECT":
                port = int(target.rsplit(":", 1)[1])
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target)
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", parts.port)
                kept = [x for x in lines if not x.lower().startswith("proxy-authorization:")]
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                up_writer.write(
                    f"{method} {path} HTTP/1.1\r\n".encode() + "\r\n".join(kept).encode()
                )
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def running_proxy(auth: str | None = None) -> AsyncIterator[Proxy]:
    proxy = Proxy(auth)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()
