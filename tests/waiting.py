"""The one poll-until helper: async tests `await wait_for(...)`, code in threads or sync tests
call `wait_until(...)`. Deadlines are generous (machines are shared); they bound a hang, they
are not a timing assertion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["wait_for", "wait_until"]

T = TypeVar("T")


What = str | Callable[[], str]


def _timed_out(what: What, timeout: float, last: object) -> AssertionError:
    """`what` may be a callable, evaluated only now (e.g. a log file's text)."""
    text = what() if callable(what) else what
    return AssertionError(f"timed out after {timeout:g}s waiting for {text} (last: {last!r})")


async def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 20.0,
    interval: float = 0.05,
    what: What = "the condition",
) -> Any:
    """Poll a sync or async predicate until it returns something truthy; return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() >= deadline:
            raise _timed_out(what, timeout, last)
        await asyncio.sleep(interval)


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    what: What = "the condition",
    interval: float = 0.1,
) -> T:
    """The same for code that cannot await: blocks the calling thread between looks."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        time.sleep(interval)
