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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.recovery.helpers import AUTH, alert, make_config, payload, running
from tests.recovery.test_restart_e2e import ProbingTargets, restart_rule, server, wait_up
from tests.servers import serve_aiohttp

__all__ = ["server"]  # the fixture, used here


class LeaseApi:
    """The Kubernetes API's Lease routes on 127.0.0.1 as the API server answers them
    (k8s.io/apiserver: create of an existing name 409 AlreadyExists, an update with a stale
    metadata.resourceVersion 409 Conflict, each write a new resourceVersion)."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.conflicts = 0
        self.tokens: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application()
        base = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
        app.router.add_get(base + "/{name}", self.get)
        app.router.add_post(base, self.create)
        app.router.add_put(base + "/{name}", self.replace)
        return app

    def _stamp(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        self.leases[body["metadata"]["name"]] = body
        return body

    async def get(self, request: web.Request) -> web.Response:
        self.tokens.add(request.headers.get("Authorization", ""))
        lease = self.leases.get(request.match_info["name"])
        if lease is None:
            return web.json_response(
                {"kind": "Status", "reason": "NotFound", "code": 404}, status=404
            )
        return web.json_response(lease)

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["metadata"]["name"] in self.leases:
            self.conflicts += 1
            return web.json_response(
                {"kind": "Status", "reason": "AlreadyExists", "code": 409}, status=409
            )
        return web.json_response(self._stamp(body), status=201)

    async def replace(self, request: web.Request) -> web.Response:
        body = await request.json()
        current = self.leases.get(request.match_info["name"])
        stale = (
            current is None
            or body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]
        )
        if stale:
            self.conflicts += 1
            return web.json_response(
                {"kind": "Status", "reason": "Conflict", "code": 409}, status=409
            )
        return web.json_response(self._stamp(body))


def receiver_config(tmp_path: Path, name: str, port: int, pidfile: Path, shared: Any) -> Any:
    home = tmp_path / name
    home.mkdir()
    rule = restart_rule(pidfile, port)
    rails: dict[str, Any] = {
        "grace": "5m",
        "verify_timeout": 30,
        "verify_interval": 0.2,
        "cooldown": "10m",
    }
    if isinstance(shared, Path):
        rails["shared_file"] = str(shared)
    elif shared is not None:  # the Lease API's URL
        token = tmp_path / "sa-token"
        token.write_text("sa-token-for-leases\n")
        rails["shared_lease"] = {
            "api_url": shared,
            "namespace": "monitoring",
            "token_file": str(token),
        }
    return make_config(home, rules=[rule], rails=rails)


@contextlib.asynccontextmanager
async def two_receivers(
    tmp_path: Path, port: int, pidfile: Path, shared: Any
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


@pytest.mark.parametrize("shared", ["file", "lease", None], ids=["lock-file", "lease", "own-rails"])
async def test_two_receivers_restart_once(
    tmp_path: Path, server: tuple[Path, int], shared: str | None
) -> None:
    pidfile, port = server
    await wait_up(f"http://127.0.0.1:{port}")
    first = int(pidfile.read_text())
    os.kill(first, signal.SIGKILL)  # the model server crashes
    restarts = tmp_path / "restarts"
    api = LeaseApi()
    async with contextlib.AsyncExitStack() as stack:
        ledger: Any = None
        if shared == "file":
            ledger = tmp_path / "rails.json"
        elif shared == "lease":
            ledger = await stack.enter_async_context(serve_aiohttp(api.app()))
        pair = await stack.enter_async_context(two_receivers(tmp_path, port, pidfile, ledger))
        await deliver_twice(pair)
        seen = attempts(pair)
    if shared == "lease":
        assert len(api.leases) == 1 and api.tokens == {"Bearer sa-token-for-leases"}
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


async def test_a_lease_lets_one_of_many_concurrent_claims_through() -> None:
    """Eight receivers claim the same target at once through the Lease: the API server's
    conflicts serialise them, one goes, the others see its claim."""
    from exporter.config.recovery import RailsConfig, SharedLease
    from exporter.recovery.lease import LeaseStore
    from exporter.recovery.rails import TargetRecord
    from exporter.recovery.shared import SharedRails

    api = LeaseApi()
    async with serve_aiohttp(api.app()) as url:
        cfg = SharedLease(api_url=url, namespace="monitoring", token_file=Path("/nonexistent"))
        rails = RailsConfig(cooldown=300)
        receivers = [SharedRails(LeaseStore(cfg, f"r{i}")) for i in range(8)]
        decisions = await asyncio.gather(
            *(
                r.claim("vllm", TargetRecord(), rails, "restart", "command", 1000.0)
                for r in receivers
            )
        )
    verdicts = sorted(d.verdict for d in decisions)
    assert verdicts == ["go"] + ["skipped_in_progress"] * 7, verdicts
    assert api.conflicts > 0  # they did race


async def test_the_file_ledger_shares_cooldown_and_attempt_limit_and_forgets_a_dead_claim(
    tmp_path: Path,
) -> None:
    from exporter.config.recovery import RailsConfig
    from exporter.recovery.rails import Attempt, TargetRecord
    from exporter.recovery.shared import FileStore, SharedRails

    path = tmp_path / "rails.json"
    rails = RailsConfig(cooldown=300, max_attempts=2, window=3600, grace=60, verify_timeout=60)
    a, b = SharedRails(FileStore(path)), SharedRails(FileStore(path))
    mine = TargetRecord()
    # a claims and dies without an outcome: b is kept out until grace + verify_timeout passed
    assert (await a.claim("vllm", TargetRecord(), rails, "r", "command", 1000.0)).verdict == "go"
    held = await b.claim("vllm", mine, rails, "r", "command", 1100.0)
    assert held.verdict == "skipped_in_progress"
    assert (await b.claim("vllm", mine, rails, "r", "command", 1121.0)).verdict == "go"
    done = Attempt(
        started_at=1121.0, rule="r", action="command", finished_at=1130.0, result="failed"
    )
    await b.release("vllm", 1121.0, done)
    # b's failed attempt counts for a's cooldown ...
    cooling = await a.claim("vllm", TargetRecord(), rails, "r", "command", 1200.0)
    assert cooling.verdict == "skipped_cooldown"
    # ... and, with a's own old attempt, for the attempt limit
    old = Attempt(
        started_at=1000.0, rule="r", action="command", finished_at=1010.0, result="failed"
    )
    limit = await a.claim("vllm", TargetRecord(attempts=[old]), rails, "r", "command", 2000.0)
    assert limit.verdict == "skipped_exhausted" and limit.exhaust
    # a claim dropped (the re-probe found the server well) leaves no trace
    other = SharedRails(FileStore(path))
    assert (await other.claim("x", TargetRecord(), rails, "r", "command", 5000.0)).verdict == "go"
    await other.release("x", 5000.0, None)
    assert (await b.claim("x", TargetRecord(), rails, "r", "command", 5001.0)).verdict == "go"
    # a damaged ledger is an empty one, not a crash
    path.write_text("{not json")
    assert (await a.claim("y", TargetRecord(), rails, "r", "command", 9000.0)).verdict == "go"
