"""The admin API: loopback only, not on the public port, and it drives the faults."""

from __future__ import annotations

import httpx

from exporter.simulate import Simulator
from exporter.simulate.admin import AdminServer, is_loopback
from exporter.simulate.http import Request
from tests.simulate.conftest import PROBE_BODY


def _request(method: str, path: str, peer: str, body: bytes = b"") -> Request:
    return Request(method, path, "HTTP/1.1", {}, body, peer)


async def test_admin_refuses_non_loopback_clients(sim: Simulator) -> None:
    admin = AdminServer(sim)
    status, body = admin.handle(_request("GET", "/admin/state", "192.0.2.10"))
    assert status == 403
    assert "loopback" in body["error"]
    status, _ = admin.handle(_request("POST", "/admin/fault", "10.1.2.3", b'{"kind":"down"}'))
    assert status == 403
    assert sim.fault_state()["faults"] == []  # nothing happened
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("192.0.2.10")


async def test_admin_is_bound_to_loopback_only(sim: Simulator) -> None:
    assert sim.admin_url is not None
    assert sim.admin_url.startswith("http://127.0.0.1:")
    assert sim._admin is not None and sim._admin._server is not None
    addresses = {s.getsockname()[0] for s in sim._admin._server.sockets}
    assert addresses == {"127.0.0.1"}


async def test_admin_is_not_on_the_public_port(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/admin/state"),
        ("POST", "/admin/fault"),
        ("POST", "/admin/reset"),
    ):
        r = await client.request(method, path, json={"kind": "down"})
        assert r.status_code == 404
    assert (await client.get("/health")).status_code == 200


async def test_admin_drives_faults(sim: Simulator, client: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=5) as admin:
        state = (await admin.get("/admin/state")).json()
        assert state["phase"] == "ready" and state["faults"] == []
        r = await admin.post("/admin/fault", json={"kind": "wrong_answer", "answer": "Nice"})
        assert r.status_code == 200
        assert [f["kind"] for f in r.json()["faults"]] == ["wrong_answer"]
        answer = await client.post("/v1/chat/completions", json=PROBE_BODY)
        assert answer.json()["choices"][0]["message"]["content"] == "Nice"
        r = await admin.post(
            "/admin/fault", json=[{"kind": "slow", "seconds": 0.01}, {"kind": "garbage"}]
        )
        assert {f["kind"] for f in r.json()["faults"]} == {"wrong_answer", "slow", "garbage"}
        r = await admin.post("/admin/clear", json={"kind": "garbage"})
        assert {f["kind"] for f in r.json()["faults"]} == {"wrong_answer", "slow"}
        r = await admin.post("/admin/reset")
        assert r.json()["faults"] == []
        answer = await client.post("/v1/chat/completions", json=PROBE_BODY)
        assert answer.json()["choices"][0]["message"]["content"] == "Paris"
        kinds = (await admin.get("/admin/faults")).json()["kinds"]
        assert "overloaded" in kinds and "health_lies" in kinds
        assert r.json()["stats"]["chat_completions"] == 1


async def test_admin_rejects_bad_faults(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=5) as admin:
        for body in (
            {"kind": "meteor"},
            {"kind": "slow", "colour": "red"},
            {"kind": "error_rate", "rate": 2},
        ):
            r = await admin.post("/admin/fault", json=body)
            assert r.status_code == 400, body
            assert "error" in r.json()
        assert (await admin.post("/admin/fault", content=b"{nope")).status_code == 400
        assert (await admin.get("/admin/nope")).status_code == 404
    assert sim.fault_state()["faults"] == []


async def test_admin_down_and_back(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.admin_url, timeout=5) as admin:
        r = await admin.post("/admin/fault", json={"kind": "down"})
        assert r.json()["listening"] is False
        async with httpx.AsyncClient(timeout=5) as c:
            try:
                await c.get(f"{sim.url}/health")
                raise AssertionError("still listening")
            except httpx.ConnectError:
                pass
        r = await admin.post("/admin/reset")
        assert r.json()["listening"] is True
