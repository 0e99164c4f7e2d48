"""Shared fixtures: free loopback ports, and the requirement that real tools exist under CI."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator

import pytest

from exporter.simulate import Simulator, SimulatorConfig


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    """A simulated vLLM server on a free loopback port with quick (but non-zero) timings."""
    server = Simulator(SimulatorConfig(port=0, ttft_seconds=0.02, token_interval_seconds=0.005))
    await server.start()
    yield server
    await server.stop()
