"""A lock per key that costs nothing while free: a key is in the table only while it is held,
with the futures of those waiting for it. The scheduler keeps a check's probes from
overlapping (its own turn and a recovery's `probe_now`); an asyncio.Lock per check, 15,000
of them at 5,000 targets, was ~200 bytes each kept for a wait that almost never happens."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType

__all__ = ["Gates"]


class Gates:
    def __init__(self) -> None:
        self._held: dict[Hashable, list[asyncio.Future[None]]] = {}

    def hold(self, key: Hashable) -> _Hold:
        """`async with gates.hold(key):` one holder of `key` at a time, first come first served."""
        return _Hold(self, key)

    def held(self, key: Hashable) -> bool:
        return key in self._held

    def __len__(self) -> int:
        return len(self._held)

    async def acquire(self, key: Hashable) -> None:
        waiters = self._held.get(key)
        if waiters is None:
            self._held[key] = []
            return
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter  # resolved: the key was handed over to us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(key)  # handed over, then cancelled: pass it on
            elif waiter in waiters:
                waiters.remove(waiter)
            raise

    def release(self, key: Hashable) -> None:
        waiters = self._held[key]
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return
        del self._held[key]


class _Hold:
    __slots__ = ("_gates", "_key")

    def __init__(self, gates: Gates, key: Hashable) -> None:
        self._gates, self._key = gates, key

    async def __aenter__(self) -> None:
        await self._gates.acquire(self._key)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._gates.release(self._key)
