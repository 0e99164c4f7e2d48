"""Two replicas, at most one restart: two real recovery receivers (each its own records,
history and rails) are handed the same incident (the webhook delivered to both at once, then
repeated to both) against a real local model server that has died. With a shared rails file
(recovery/shared.py) the server is restarted once; without one, each receiver's re-probe sees
it down while the other restarts it, and it is restarted twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.recovery.helpers import AUTH, alert, make_config, payload, running
from tests.recovery.test_restart_e2e import SCRIPTS, ProbingTargets, server, wait_up

__all__ = ["server"]  # the fixture, used here


def receiver_config(
    tmp_path: Path, name: str, port: int, pidfile: Path, shared: Path | None
) -> Any:
    home = tmp_path / name
    home.mkdir()
    rule = {
        "name": "restart-local",
        "action": {
            "type": "command",
            "timeout": 30,
            "argv": [
                sys.executable,
                str(SCRIPTS / "restart_server.py"),
                str(pidfile),
                str(port),
                "1.0",
            ],
        },
    }
    rails: dict[str, Any] = {
        "grace": "5m",
        "verify_timeout": 30,
        "verify_interval": 0.2,
        "cooldown": "10m",
    }
    if shared is not None:
        rails["shared_file"] = str(shared)
    return make_config(home, rules=[rule], rails=rails)


@contextlib.asynccontextmanager
async def two_receivers(
    tmp_path: Path, port: int, pidfile: Path, shared: Path | None
) -> AsyncIterator[list[Any]]:
    url = f"http://127.0.0.1:{port}"
    async with contextlib.AsyncExitStack() as stack:
        pair = []
        for name in ("replica-0", "replica-1"):
            cfg = receiver_config(tmp_path, name, port, pidfile, shared)
            pair.append(await stack.enter_async_context(running(cfg, ProbingTargets("vllm", url))))
        yield pair


def attempts(pair: list[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for _svc, _client, reg in pair:
        for metric in reg.collect():
            for s in metric.samples:
                if s.name == "llm_recovery_attempts_total" and s.value:
                    out[s.labels["result"]] = out.get(s.labels["result"], 0) + s.value
    return out


async def deliver_twice(pair: list[Any]) -> None:
    """The webhook to both receivers at once, then repeated to both (Alertmanager's
    repeat, or a Service balancing it over the replicas)."""
    for _ in range(2):
        body = payload(alert())
        answers = await asyncio.gather(
            *(
                client.post("/hooks/alertmanager", json=body, headers=AUTH)
                for _s, client, _r in pair
            )
        )
        assert [r.status_code for r in answers] == [200, 200]
        await asyncio.gather(*(svc.drain(timeout=60) for svc, _c, _r in pair))


@pytest.mark.parametrize("shared", [True, False], ids=["shared-rails", "own-rails"])
async def test_two_receivers_restart_once(
    tmp_path: Path, server: tuple[Path, int], shared: bool
) -> None:
    pidfile, port = server
    await wait_up(f"http://127.0.0.1:{port}")
    first = int(pidfile.read_text())
    os.kill(first, signal.SIGKILL)  # the model server crashes
    restarts = tmp_path / "restarts"
    ledger = tmp_path / "rails.json" if shared else None
    async with two_receivers(tmp_path, port, pidfile, ledger) as pair:
        await deliver_twice(pair)
        seen = attempts(pair)
    await wait_up(f"http://127.0.0.1:{port}")
    restarts.write_text(str(seen))
    done = sum(v for k, v in seen.items() if k in ("success", "failed"))
    if shared:
        assert done == 1, seen  # one restart for the incident, whoever got it first
        assert seen.get("success") == 1, seen
        skipped = seen.get("skipped_in_progress", 0) + seen.get("skipped_cooldown", 0)
        # the other receiver, at once and repeated (the one that acted drops its own repeat)
        assert skipped + seen.get("skipped_healthy", 0) >= 2, seen
    else:
        assert done == 2, seen  # the re-probe alone is not enough: why the rails are shared
