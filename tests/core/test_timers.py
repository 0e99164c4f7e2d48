"""The scheduler's one timer heap (exporter/engine/timers.py): what is due fires in order, once,
at its latest time; a sooner time wakes the sleeping dispatcher; a cancelled item never fires."""

from __future__ import annotations

import asyncio

from exporter.engine.timers import TimerHeap


class Item:
    def __init__(self, name: str) -> None:
        self.name = name
        self.due: float | None = None


async def _run(
    setup: list[tuple[float, Item]], until: int, cancel: Item | None = None
) -> list[str]:
    fired: list[str] = []
    done = asyncio.Event()

    def fire(item: Item) -> None:
        fired.append(item.name)
        if len(fired) >= until:
            done.set()

    heap = TimerHeap(fire)
    heap.start()
    now = asyncio.get_running_loop().time()
    for offset, item in setup:
        heap.at(now + offset, item)
    if cancel is not None:
        heap.cancel(cancel)
    try:
        await asyncio.wait_for(done.wait(), 5.0)
        await asyncio.sleep(0.05)  # anything that should not fire has had its chance
    finally:
        await heap.stop()
    return fired


async def test_due_items_fire_in_time_order_once() -> None:
    a, b, c = Item("a"), Item("b"), Item("c")
    assert await _run([(0.03, a), (0.01, b), (0.02, c)], 3) == ["b", "c", "a"]
    assert a.due is b.due is c.due is None


async def test_setting_an_item_again_replaces_its_time() -> None:
    a, b = Item("a"), Item("b")
    # a is set for an hour, then for now: it fires once, before b, never at the old time
    assert await _run([(3600, a), (0.02, b), (0.0, a)], 2) == ["a", "b"]


async def test_a_sooner_time_wakes_the_sleeping_dispatcher() -> None:
    fired: list[str] = []
    heap = TimerHeap(lambda item: fired.append(item.name))
    heap.start()
    loop = asyncio.get_running_loop()
    heap.at(loop.time() + 3600, Item("later"))
    await asyncio.sleep(0.02)  # the dispatcher sleeps until the hour is up
    heap.at(loop.time(), Item("now"))
    for _ in range(200):
        if fired:
            break
        await asyncio.sleep(0.01)
    await heap.stop()
    assert fired == ["now"]


async def test_a_cancelled_item_never_fires() -> None:
    a, b = Item("a"), Item("b")
    assert await _run([(0.01, a), (0.02, b)], 1, cancel=a) == ["b"]
