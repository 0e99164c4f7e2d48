"""A real restart: a local model-server process dies, the alert arrives, the command action
restarts it, the grace period covers its loading time, verification probes it back up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exporter.recovery import TargetCheck
from tests.conftest import free_port
from tests.recovery.helpers import AUTH, HERE, alert, make_config, payload, running

SCRIPTS = HERE / "scripts"


def restart_rule(pidfile: Path, port: int) -> dict[str, object]:
    """The recovery rule that restarts the test's model server (scripts/restart_server.py)."""
    argv = [sys.executable, str(SCRIPTS / "restart_server.py"), str(pidfile), str(port), "1.0"]
    return {"name": "restart-local", "action": {"type": "command", "timeout": 30, "argv": argv}}


class ProbingTargets:
    """A TargetControl that really probes GET /health of one local server."""

    def __init__(self, name: str, url: str) -> None:
        self.name, self.url = name, url
        self.grace_until = 0.0
        self.graces: list[float] = []
        self.seen_starting = False

    def target_names(self) -> list[str]:
        return [self.name]

    def has_target(self, name: str) -> bool:
        return name == self.name

    def target_url(self, name: str) -> str:
        return self.url

    def state(self, name: str) -> str:
        return "unknown"

    async def check_now(self, name: str) -> TargetCheck:
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                r = await client.get(self.url + "/health")
        except httpx.HTTPError as exc:
            state = "starting" if time.monotonic() < self.grace_until else "down"
            self.seen_starting |= state == "starting"
            return TargetCheck(False, False, state, detail=type(exc).__name__)
        ok = r.status_code == 200
        return TargetCheck(ok, True, "up" if ok else "down", detail=r.text)

    def begin_grace(self, name: str, seconds: float, reason: str) -> None:
        self.graces.append(seconds)
        self.grace_until = time.monotonic() + seconds

    def end_grace(self, name: str) -> None:
        self.grace_until = 0.0


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    pidfile = tmp_path / "server.pid"
    port = free_port()
    subprocess.run(
        [sys.executable, str(SCRIPTS / "restart_server.py"), str(pidfile), str(port), "0"],
        check=True,
        capture_output=True,
    )
    try:
        yield pidfile, port
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


async def wait_up(url: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        while True:
            try:
                r = await client.get(url + "/health")
                if r.status_code == 200:
                    return r.text
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server never came up"
            await asyncio.sleep(0.05)


async def test_command_restarts_a_dead_server_and_verifies(
    tmp_path: Path, server: tuple[Path, int]
) -> None:
    pidfile, port = server
    url = f"http://127.0.0.1:{port}"
    await wait_up(url)
    old_pid = int(pidfile.read_text())
    os.kill(old_pid, signal.SIGKILL)  # the model server crashes

    rule = restart_rule(pidfile, port)
    cfg = make_config(
        tmp_path,
        rules=[rule],
        rails={"grace": "5m", "verify_timeout": 30, "verify_interval": 0.2, "cooldown": 0},
    )
    targets = ProbingTargets("vllm", url)
    async with running(cfg, targets) as (svc, client, reg):
        r = await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
        assert r.status_code == 200
        await svc.drain(timeout=60)
        assert (
            reg.get_sample_value(
                "llm_recovery_attempts_total",
                {"target": "vllm", "action": "command", "result": "success"},
            )
            == 1
        ), svc.recent
    new_pid = int(pidfile.read_text())
    assert new_pid != old_pid and alive(new_pid)
    assert (await wait_up(url)) == f"pid={new_pid}"
    assert targets.graces == [300.0]
    assert targets.seen_starting  # it was loading (port closed) and that was not called down
    history = (tmp_path / "history.jsonl").read_text()
    assert '"result":"success"' in history


async def test_a_live_server_gets_no_restart(tmp_path: Path, server: tuple[Path, int]) -> None:
    pidfile, port = server
    url = f"http://127.0.0.1:{port}"
    await wait_up(url)
    pid = int(pidfile.read_text())
    rule = {
        "name": "restart-local",
        "action": {
            "type": "command",
            "argv": [
                sys.executable,
                str(SCRIPTS / "restart_server.py"),
                str(pidfile),
                str(port),
                "0",
            ],
        },
    }
    async with running(make_config(tmp_path, rules=[rule]), ProbingTargets("vllm", url)) as (
        svc,
        client,
        reg,
    ):
        await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
        await svc.drain()
        assert (
            reg.get_sample_value(
                "llm_recovery_attempts_total",
                {"target": "vllm", "action": "command", "result": "skipped_healthy"},
            )
            == 1
        )
    assert int(pidfile.read_text()) == pid and alive(pid)
