"""Shared fixtures: free loopback ports, and the requirement that real tools exist under CI."""

from __future__ import annotations

import os
import random
import shutil
import socket
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from exporter.simulate import Simulator, SimulatorConfig

_rng = random.Random()


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1.

    Picked below Linux's ephemeral range (32768-60999): a port from bind(0) can be handed out
    again as the source port of any outgoing connection before the server that was meant to
    get it binds, and with a few hundred probe connections a second that race is real."""
    for _ in range(200):
        port = _rng.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000 on 127.0.0.1")


def found(paths: Iterable[Path], what: str) -> list[Path]:
    """The paths, sorted, failing when there is none: a loop (or a parametrize) over an empty
    glob asserts nothing, so a moved folder would pass every test that walks it."""
    out = sorted(paths)
    assert out, f"no {what} found (moved or renamed?)"
    return out


def require_binary(name: str) -> str:
    """Path of a Debian tool the test needs. Under CI a missing tool fails (an install step
    is missing); elsewhere the test is skipped with the reason."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (make test installs it: Debian package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The one simulator fixture: a simulated vLLM server on a free loopback port with quick
    (but non-zero) timings, ready when the test starts, stopped after it."""
    server = Simulator(SimulatorConfig(port=0, ttft_seconds=0.02, token_interval_seconds=0.005))
    await server.start()
    await server.wait_ready()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(autouse=True)
def _no_exporter_problems_from_other_tests() -> Iterable[None]:
    """The book of the exporter's own faults is one per process (util/faults.py): a problem a
    test leaves open must not show on the next test's page or API."""
    from exporter.util.faults import FAULTS

    FAULTS.clear()
    yield
    FAULTS.clear()
