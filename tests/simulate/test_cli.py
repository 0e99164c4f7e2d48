"""The command line as users run it: a real process that crashes, and the supervisor that
brings it back and counts restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.simulate.conftest import PROBE_BODY
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "exporter.simulate", *args],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_crash_exits_the_process(tmp_path: Path, spawned: list[subprocess.Popen[bytes]]) -> None:
    ready = tmp_path / "ready.json"
    proc = _spawn(["--port", "0", "--admin-port", "0", "--fast", "--ready-file", str(ready)])
    spawned.append(proc)
    info = wait_until(lambda: _read_json(ready))
    assert isinstance(info, dict)
    url, admin = str(info["url"]), str(info["admin_url"])
    r = httpx.post(f"{url}/v1/chat/completions", json=PROBE_BODY, timeout=5)
    assert r.json()["choices"][0]["message"]["content"] == "Paris"
    httpx.post(f"{admin}/admin/fault", json={"kind": "crash", "exit_code": 3}, timeout=5)
    assert proc.wait(20) == 3
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def test_sigterm_stops_cleanly(tmp_path: Path, spawned: list[subprocess.Popen[bytes]]) -> None:
    ready = tmp_path / "ready.json"
    proc = _spawn(["--port", "0", "--no-admin", "--fast", "--ready-file", str(ready)])
    spawned.append(proc)
    wait_until(lambda: _read_json(ready))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def test_supervisor_restarts_and_counts(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    ready, pidfile, counter = tmp_path / "ready.json", tmp_path / "sim.pid", tmp_path / "restarts"
    proc = _spawn([
        "--supervise", "--pidfile", str(pidfile), "--restart-count-file", str(counter),
        "--restart-delay", "0.1", "--port", str(port), "--admin-port", "0", "--fast",
        "--startup-seconds", "0.3", "--ready-file", str(ready),
    ])  # fmt: skip
    spawned.append(proc)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _healthy(url))
    assert counter.read_text().strip() == "0"
    first_pid = int(pidfile.read_text())

    # The restart command a recovery action would run: kill the child by its pidfile.
    os.kill(first_pid, signal.SIGTERM)
    wait_until(lambda: counter.read_text().strip() == "1")
    wait_until(lambda: _healthy(url))
    assert int(pidfile.read_text()) != first_pid

    # A crash through the admin API: the supervisor restarts it as well.
    info = wait_until(lambda: (i := _read_json(ready)) and i["pid"] != first_pid and i)
    assert isinstance(info, dict)
    httpx.post(f"{info['admin_url']}/admin/fault", json={"kind": "crash"}, timeout=5)
    wait_until(lambda: counter.read_text().strip() == "2")
    wait_until(lambda: _healthy(url))

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert not pidfile.exists()
    assert not _healthy(url)


def test_help_lists_faults() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "exporter.simulate", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    for kind in ("down", "crash", "hang", "overloaded", "model_swap"):
        assert kind in out.stdout
