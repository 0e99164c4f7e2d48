"""A tiny HTTP/1.1 server on many loopback ports that answers the fixed bench bodies after a
known delay, for timing fidelity (nginx cannot sleep). Run: python -m bench.delayserver.

The delay is kept precisely: sleep until 1.5 ms before the deadline, then spin, because the
event loop's timers are only millisecond-exact; the spin is the server's CPU, not the probers'."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from pathlib import Path

from bench import fixtures

__all__ = ["serve"]

_SPIN = 0.0015


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            deadline = time.perf_counter() + delay
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            wait = deadline - time.perf_counter() - _SPIN
            if wait > 0:
                await asyncio.sleep(wait)
            while time.perf_counter() < deadline:
                pass
            status, ctype, body = fixtures.response_for(path)
            writer.write(
                f"HTTP/1.1 {status} OK\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    writer.close()


async def serve(ports: list[int], delay: float, ready_file: Path | None) -> None:
    servers = [
        await asyncio.start_server(
            lambda r, w: _handle(r, w, delay), "127.0.0.1", port, backlog=1024
        )
        for port in ports
    ]
    if ready_file is not None:
        ready_file.write_text(json.dumps({"ports": ports, "delay": delay}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--delay", type=float, required=True, help="seconds")
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args()
    ports = list(range(args.base_port, args.base_port + args.count))
    asyncio.run(serve(ports, args.delay, args.ready_file))


if __name__ == "__main__":
    main()
