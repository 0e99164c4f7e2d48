"""The event loop `run` serves on: uvloop where it is installed (a dependency on Linux and
macOS), asyncio's own otherwise or when `event_loop: asyncio` asks for it.

Why uvloop: every probe is a dozen turns of the loop (connect, write, read, timers), and each
turn that runs Python instead of C is time a probe in flight measures as the server's latency.
On the scale bench uvloop took about a tenth off the CPU per probe and shortened the loop's
longest turns (BENCHMARKS.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from exporter.errors import ConfigError

__all__ = ["loop_name", "run", "stop_task"]

T = TypeVar("T")
Choice = Literal["auto", "uvloop", "asyncio"]


def _uvloop() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def loop_name(choice: Choice = "auto") -> str:
    """The loop `run(..., choice)` would use."""
    if choice == "asyncio":
        return "asyncio"
    if _uvloop() is None:
        if choice == "uvloop":
            raise ConfigError("event_loop: uvloop is not installed (pip install uvloop)")
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T], choice: Choice = "auto") -> T:
    """asyncio.run on the chosen loop (preflight has checked that it is installed)."""
    if loop_name(choice) == "uvloop":
        result: T = _uvloop().run(main)
        return result
    return asyncio.run(main)


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has ended (its cancellation is not an error)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
