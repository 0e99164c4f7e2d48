"""The synchronous helpers: run_in_thread and a farm of targets in one process."""

from __future__ import annotations

import httpx
import pytest

from exporter.simulate import FaultSpec, SimulatorConfig, SimulatorFarm, run_in_thread
from tests.simulate.conftest import PROBE_BODY
from tests.waiting import wait_until


def test_run_in_thread_sync() -> None:
    with run_in_thread(SimulatorConfig(port=0, ttft_seconds=0)) as sim:
        with httpx.Client(base_url=sim.url, timeout=5) as c:
            assert c.get("/health").status_code == 200
            sim.set_fault(FaultSpec(kind="down"))
            # a new connection is refused (the pooled one may still look open: a reset, racy)
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{sim.url}/health", timeout=5)
            sim.clear_faults()
            r = c.post("/v1/chat/completions", json=PROBE_BODY)
            assert r.json()["choices"][0]["message"]["content"] == "Paris"
        # the server counts a request done just after its last byte went out
        wait_until(lambda: sim.stats.completed == 1, what="the request counted as completed")
        url = sim.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


async def test_farm_many_targets_one_admin() -> None:
    farm = SimulatorFarm(SimulatorConfig(port=0).fast(), [0, 0, 0])
    await farm.start()
    try:
        ports = [s.port for s in farm.simulators]
        assert len(set(ports)) == 3
        async with httpx.AsyncClient(timeout=5) as c:
            for sim in farm.simulators:
                assert (
                    await c.post(f"{sim.url}/v1/chat/completions", json=PROBE_BODY)
                ).status_code == 200
            r = await c.post(f"{farm.admin_url}/admin/fault?port={ports[1]}", json={"kind": "down"})
            assert r.status_code == 200
            assert [t["listening"] for t in r.json()["targets"]] == [False]
            with pytest.raises(httpx.ConnectError):
                await c.get(f"{farm.simulators[1].url}/health")
            assert (await c.get(f"{farm.simulators[0].url}/health")).status_code == 200
            state = (await c.get(f"{farm.admin_url}/admin/state")).json()
            assert [t["listening"] for t in state["targets"]] == [True, False, True]
            assert (await c.post(f"{farm.admin_url}/admin/reset")).status_code == 200
            assert (await c.get(f"{farm.simulators[1].url}/health")).status_code == 200
            assert (await c.get(f"{farm.admin_url}/admin/state?port=1")).status_code == 404
    finally:
        await farm.stop()
