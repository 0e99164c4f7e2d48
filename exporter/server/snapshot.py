"""The read endpoints' data (`/`, `/api/v1/targets`, `/api/v1/targets/{name}`), taken from the
monitor at most once per `max_age` and encoded once per snapshot, off the event loop.

Clients looping on the status page or the API must not starve the probe loop: a hundred
clients cost one snapshot a second, one encoding of each body, and one render at a time in a
worker thread, whatever they ask (the probes' event loop never runs an encoder for them).
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from exporter.engine.monitor import Monitor
from exporter.server.views import targets_view
from exporter.util import memory

__all__ = ["Body", "ViewCache", "encoded_response"]

View = dict[str, Any]


@dataclass(frozen=True)
class Body:
    """One encoded body, plain and gzipped (level 1, as the app's middleware would)."""

    plain: bytes
    gzipped: bytes | None


def _encode(data: bytes) -> Body:
    return Body(data, gzip.compress(data, compresslevel=1) if len(data) >= 4096 else None)


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() != "gzip":
            continue
        params = params.strip().lower()
        if not params.startswith("q="):
            return True
        try:
            return float(params[2:]) > 0
        except ValueError:
            return False
    return False


def encoded_response(
    request: Request, body: Body, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    """The cached body, gzipped if the client takes it (the gzip middleware then leaves a
    response that already has a Content-Encoding alone)."""
    out = {**(headers or {}), "Vary": "Accept-Encoding"}
    if body.gzipped is not None and _accepts_gzip(request):
        out["Content-Encoding"] = "gzip"
        return Response(body.gzipped, media_type=media_type, headers=out)
    return Response(body.plain, media_type=media_type, headers=out)


class ViewCache:
    """The monitor's view for the read endpoints: a snapshot at most `max_age` seconds old,
    and the bodies rendered from it (a few per snapshot: the API's and the page's)."""

    def __init__(
        self,
        monitor: Monitor,
        *,
        max_age: float = 1.0,
        max_bodies: int = 8,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.monitor = monitor
        self.max_age = max_age
        self.max_bodies = max_bodies
        self.clock = clock
        self.wall = wall
        self.snapshots = 0  # how many were taken (a test and a curious operator read it)
        self._view: View | None = None
        self._by_name: dict[str, Any] = {}
        self._taken_at = float("-inf")
        self._bodies: OrderedDict[Hashable, tuple[View, Body]] = OrderedDict()
        self._gate: asyncio.Semaphore | None = None

    def invalidate(self) -> None:
        """The next read takes a new snapshot (after a write the reader expects to see)."""
        self._view = None

    def view(self) -> View:
        """The current snapshot (taken now if the last is older than `max_age`)."""
        now = self.clock()
        if self._view is None or now - self._taken_at >= self.max_age:
            self._view = targets_view(self.monitor, self.wall())
            self._by_name = {t["name"]: t for t in self._view["targets"]}
            self._taken_at = now
            self.snapshots += 1
            self._expire_later()
        return self._view

    def _expire_later(self) -> None:
        """Let go of the snapshot and its bodies once it is stale: no request can be answered
        from them any more, and at 5,000 targets they are ~150 MB (bench/memory.py). A little
        after `max_age` (a timer may fire early by the loop's clock resolution)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # read outside a loop (a test, a tool): kept, as before
            return
        loop.call_later(self.max_age * 1.1 + 0.01, self._expire)

    def _expire(self) -> None:
        if self._view is not None and self.clock() - self._taken_at >= self.max_age:
            self._view = None
            self._by_name = {}
            self._bodies.clear()
            # tens of MB just freed: give them back, or RSS keeps them (util/memory.py)
            asyncio.get_running_loop().run_in_executor(None, memory.release)

    def target(self, name: str) -> dict[str, Any] | None:
        """One target's view from the current snapshot."""
        self.view()
        return self._by_name.get(name)

    async def body(self, key: Hashable, render: Callable[[View], bytes]) -> Body:
        """`render(snapshot)` encoded once per snapshot and key, in a worker thread, one
        render at a time (a burst of different keys queues instead of piling up)."""
        view = self.view()
        cached = self._bodies.get(key)
        if cached is not None and cached[0] is view:
            return cached[1]
        if self._gate is None:
            self._gate = asyncio.Semaphore(1)
        async with self._gate:
            cached = self._bodies.get(key)
            if cached is not None and cached[0] is view:
                return cached[1]  # rendered while this request waited
            body = await asyncio.to_thread(lambda: _encode(render(view)))
            if view is not self._view:
                # the snapshot expired while it rendered (a render can outlast `max_age`):
                # kept, the body and the whole snapshot would stay until the next request
                # (~300 MB at 10,000 targets; issue 26)
                return body
            self._bodies[key] = (view, body)
            self._bodies.move_to_end(key)
            while len(self._bodies) > self.max_bodies:
                self._bodies.popitem(last=False)
            return body
