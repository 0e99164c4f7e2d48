"""The scheduler's per-check locks (exporter/engine/gates.py): one holder per key, first come
first served, nothing kept for a free key, and a waiter cancelled as the key is handed to it
passes it on instead of keeping it forever."""

from __future__ import annotations

import asyncio

import pytest

from exporter.engine.gates import Gates


async def test_one_holder_per_key_in_arrival_order_and_nothing_kept_after() -> None:
    gates = Gates()
    order: list[str] = []

    async def worker(name: str, key: str) -> None:
        async with gates.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(0.01)
            order.append(f"{name}-")

    await asyncio.gather(worker("a", "k"), worker("b", "k"), worker("c", "other"))
    assert order.index("a-") < order.index("b+")  # b waited for a on the same key
    assert order.index("c+") < order.index("a-")  # another key never waits
    assert len(gates) == 0  # free keys cost nothing


async def test_a_waiter_cancelled_as_the_key_is_handed_over_passes_it_on() -> None:
    gates = Gates()
    await gates.acquire("k")
    second = asyncio.create_task(gates.acquire("k"))
    third = asyncio.create_task(gates.acquire("k"))
    await asyncio.sleep(0)
    gates.release("k")  # handed to the second...
    second.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await second
    await asyncio.wait_for(third, 2.0)  # the third got it instead
    assert gates.held("k")
    gates.release("k")
    assert len(gates) == 0
