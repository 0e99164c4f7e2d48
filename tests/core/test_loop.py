"""The event loop `run` serves on: uvloop by default (a dependency), asyncio's own on request,
and a clear refusal, from check-config too, when uvloop is asked for but missing."""

from __future__ import annotations

import asyncio
import sys

import pytest

from exporter.config import Settings
from exporter.errors import ConfigError
from exporter.preflight import preflight
from exporter.util.loop import loop_name, run


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop() -> None:
    assert loop_name("auto") == "uvloop"
    assert run(_loop_module()).startswith("uvloop")


def test_asyncio_on_request() -> None:
    assert run(_loop_module(), "asyncio").startswith("asyncio")


def test_missing_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert loop_name("auto") == "asyncio"
    assert run(_loop_module()).startswith("asyncio")
    with pytest.raises(ConfigError, match="event_loop: uvloop is not installed"):
        preflight(Settings(event_loop="uvloop"), read_secrets=False)
    preflight(Settings(event_loop="auto"), read_secrets=False)
