"""Transport micro-benchmark: client CPU per request for httpx (default transport), raw
aiohttp (the probes' client until issue 16's round 4), the probes' own client raw
(exporter/probes/client.py), and our whole chat probe on it. nginx on loopback answers the
fixed streaming chat completion; each client keeps 8 connections busy.
Run: python -m bench.transport [--requests N].

Only this process's CPU is counted (time.process_time), not nginx's."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench import fixtures
from bench.servers import Nginx, free_port_block
from exporter.config import TargetConfig
from exporter.probes import ProbeContext, make_client, probe_chat
from exporter.probes.transport import timeouts

__all__ = ["run_transport"]

CONCURRENCY = 8
Request = Callable[[], Awaitable[bool]]


async def _measure(name: str, request: Request, count: int) -> dict[str, Any]:
    for _ in range(50):  # warm up: connections, caches
        await request()
    remaining = count
    ok = 0

    async def worker() -> None:
        nonlocal remaining, ok
        while remaining > 0:
            remaining -= 1
            passed = await request()
            ok += passed

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    c1, t1 = time.process_time(), time.perf_counter()
    return {
        "client": name,
        "requests": count,
        "ok": ok,
        "cpu_ms_per_request": (c1 - c0) / count * 1000,
        "requests_per_s": count / (t1 - t0),
    }


async def _clients(port: int, count: int) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}{fixtures.CHAT_PATH}"
    body = fixtures.chat_request_body()
    headers = {"Content-Type": "application/json"}
    results = []

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def via_httpx() -> bool:
            response = await client.post(url, content=body, headers=headers)
            return response.status_code == 200 and b"Paris" in response.content

        results.append(await _measure("httpx (default transport)", via_httpx, count))

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY), auto_decompress=False
    ) as session:

        async def via_aiohttp() -> bool:
            async with session.post(url, data=body, headers=headers) as response:
                payload = await response.read()
            return response.status == 200 and b"Paris" in payload

        results.append(await _measure("aiohttp (raw)", via_aiohttp, count))

    async with make_client(CONCURRENCY) as ours:
        payload_json = json.loads(body)

        async def via_ours() -> bool:
            async with ours.stream(
                "POST", url, headers=headers, timeout=timeouts(30.0), json=payload_json
            ) as response:
                payload = b"".join([chunk async for chunk in response.iter_raw()])
            return response.status_code == 200 and b"Paris" in payload

        results.append(await _measure("llm-heartbeat client (raw)", via_ours, count))

    target = TargetConfig(name="t", url=f"http://127.0.0.1:{port}")
    async with make_client(CONCURRENCY) as transport:
        ctx = ProbeContext(transport, target, 30.0, fixtures.MODEL)

        async def via_probe() -> bool:
            return (await probe_chat(ctx)).success

        results.append(await _measure("llm-heartbeat chat probe (its transport)", via_probe, count))
    return results


def run_transport(count: int = 3000, port: int | None = None) -> dict[str, Any]:
    """Measure every client; starts its own nginx unless a port of a running one is given."""
    nginx = None
    if port is None:
        tmp = Path(tempfile.mkdtemp(prefix="llmhb-transport-"))
        port = free_port_block(1)
        nginx = Nginx(tmp, [port])
        nginx.start()
    try:
        clients = asyncio.run(_clients(port, count))
    finally:
        if nginx is not None:
            nginx.stop()
    return {"concurrency": CONCURRENCY, "requests": count, "clients": clients}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = run_transport(args.requests)
    for r in result["clients"]:
        print(
            f"{r['client']:<50} {r['cpu_ms_per_request']:7.3f} ms CPU/request "
            f"{r['requests_per_s']:8.0f} req/s  ({r['ok']}/{r['requests']} ok)"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
