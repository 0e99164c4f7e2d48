"""Shared fixtures: free loopback ports, and the requirement that real tools exist under CI."""

from __future__ import annotations

import os
import shutil
import socket

import pytest


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
