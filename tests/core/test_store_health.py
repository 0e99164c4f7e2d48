"""A history that cannot be written is visible (a metric, /-/ready) and a second exporter on
the same history file is refused at start (issue 26)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from exporter.config import Settings, TargetConfig
from exporter.engine.state import State, Transition
from exporter.errors import HistoryInUse
from exporter.runtime import Exporter
from tests.waiting import wait_until


class Disk:
    """A write seam that fails with ENOSPC while `full`."""

    def __init__(self) -> None:
        self.full = True

    def __call__(self, fd: int, data: bytes) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)


def _sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_a_full_disk_is_a_metric_and_makes_ready_say_so(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    ex = Exporter(
        Settings(targets=[TargetConfig(name="a", url="http://127.0.0.1:9")], history_file=history)
    )
    ex.scheduler.started = True  # ready as far as the probes go (no probing in this test)
    disk = Disk()
    store = ex.monitor.history.file
    store.writer = disk
    store.retry_interval = 0.05
    transport = httpx.ASGITransport(app=ex.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            assert (await c.get("/-/ready")).status_code == 200
            ex.monitor.history.append(Transition(1.0, "a", State.UP, State.DOWN, "r", "d"))
            store.flush()
            ready = await c.get("/-/ready")
            assert ready.status_code == 503
            assert "transitions history" in ready.text and "No space left" in ready.text
            metrics = (await c.get("/metrics")).text
            errors = _sample(metrics, 'llm_exporter_history_write_errors_total{file="transitions"}')
            pending = _sample(metrics, 'llm_exporter_history_pending_records{file="transitions"}')
            assert errors is not None and errors >= 1 and pending == 1
            disk.full = False
            wait_until(lambda: store.pending == 0, 10, "the retry writes the transition")
            assert (await c.get("/-/ready")).status_code == 200
            metrics = (await c.get("/metrics")).text
            assert _sample(metrics, 'llm_exporter_history_pending_records{file="transitions"}') == 0
    finally:
        await ex.stop()
    assert '"reason":"r"' in history.read_text()


async def test_a_second_exporter_on_the_same_history_is_refused(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    settings = Settings(targets=[], history_file=history)
    first = Exporter(settings)
    try:
        with pytest.raises(HistoryInUse, match=str(history)):
            Exporter(settings)
    finally:
        await first.stop()
    second = Exporter(settings)  # the first one's lock went with it
    await second.stop()


def test_run_refuses_a_history_file_another_exporter_writes(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"targets: [{{name: a, url: 'http://127.0.0.1:9'}}]\nhistory_file: {history}\n")
    first = Exporter(Settings(targets=[], history_file=history))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_HEARTBEAT_")}
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "exporter.cli",
                "run",
                "-c",
                str(cfg),
                "--listen",
                "127.0.0.1:0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    finally:
        first.monitor.history.close()
    assert out.returncode == 2, out.stderr
    assert "another llm-heartbeat writes this history file" in out.stderr
    assert f"pid {os.getpid()}" in out.stderr
