"""/metrics without holding the event loop: the body of exposition.render in pieces, giving
the loop back between them, so a probe in flight never counts a scrape as its server's
latency (issue 16), and streamed, so the whole body is never in memory at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from exporter.metrics.exposition import fast_format, parts

__all__ = ["CHUNK_BYTES", "give_way", "render_async", "render_stream"]

GIVE_WAY = 0.001  # seconds a slice of rendering waits before the next one


async def give_way() -> None:
    """Let the probes run before the next slice of rendering. `sleep(0)` would not: the
    next slice is queued before the task an answer just woke, so a probe finishing during a
    scrape waited for two slices and counted them as the server's latency (bench/: the
    1,000-target timing tail sat on the scrapes). A short timer lets every woken task run
    first; a scrape takes ~1 ms longer per slice, the loop no longer."""
    await asyncio.sleep(GIVE_WAY)


CHUNK_BYTES = (
    256 * 1024
)  # a streamed body's pieces: Starlette gzips those over 128 KiB off the loop


def render_stream(
    registry: Collector, accept: str = "", slice_seconds: float = 0.002
) -> tuple[AsyncIterator[bytes], str]:
    """`render` as pieces of at least CHUNK_BYTES (a family each, or several small ones),
    giving the event loop back between families once `slice_seconds` passed. The body is
    never whole in memory: at 5,000 targets it is ~18 MB, and the scrape held it (and
    Starlette its gzip) on top of everything else."""
    encoder, content_type = choose_encoder(accept)
    fast = fast_format(encoder)
    if fast is None:
        return _once(encoder(registry)), content_type
    return _pieces(registry, encoder, fast, slice_seconds), content_type


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _pieces(
    registry: Collector, encoder: Any, fast: tuple[bool, str], slice_seconds: float
) -> AsyncIterator[bytes]:
    pending: list[bytes] = []
    size = 0
    started = time.perf_counter()
    for part in parts(registry, encoder, *fast):
        text = b"".join(part)
        pending.append(text)
        size += len(text)
        if size >= CHUNK_BYTES:
            yield b"".join(pending) if len(pending) > 1 else text
            pending.clear()
            size = 0
        if time.perf_counter() - started > slice_seconds:
            await give_way()
            started = time.perf_counter()
    if pending:
        yield b"".join(pending)


async def render_async(
    registry: Collector, accept: str = "", slice_seconds: float = 0.002
) -> tuple[bytes, str]:
    """`render`, giving the event loop back between families once `slice_seconds` passed
    (the pieces of `render_stream`, joined)."""
    pieces, content_type = render_stream(registry, accept, slice_seconds)
    return b"".join([piece async for piece in pieces]), content_type
