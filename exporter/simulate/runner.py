"""Run a simulator in a background thread, for synchronous tests and scripts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from exporter.simulate.config import SimulatorConfig
from exporter.simulate.server import Simulator

__all__ = ["run_in_thread"]


@contextmanager
def run_in_thread(
    config: SimulatorConfig | None = None, timeout: float = 30.0
) -> Iterator[Simulator]:
    """`with run_in_thread(cfg) as sim:` gives a started Simulator living in its own loop.

    Its sync methods (set_fault, clear_faults, fault_state) are safe to call from the
    caller's thread; everything is stopped and the thread joined on exit.
    """
    sim = Simulator(config or SimulatorConfig(port=0))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.start())
        except BaseException as exc:
            errors.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(sim.stop())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=run, name=f"simulator-{sim.config.port}", daemon=True)
    thread.start()
    if not started.wait(timeout):
        raise TimeoutError("simulator thread did not start")
    if errors:
        thread.join(timeout)
        raise errors[0]
    try:
        yield sim
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
