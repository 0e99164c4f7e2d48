"""Every fault, observed from a real HTTP client as a monitoring probe would see it."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from exporter.simulate import FaultSpec, Simulator, SimulatorConfig
from tests.simulate import vllm_shapes as shapes
from tests.simulate.conftest import MODEL, PROBE_BODY, read_events, stream_body
from tests.waiting import wait_for

SHORT = httpx.Timeout(10.0, read=0.5)


async def _healthy(sim: Simulator) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as c:
            return (await c.get(f"{sim.url}/health")).status_code == 200
    except httpx.TransportError:
        return False


async def test_down_refuses_connections_until_cleared(sim: Simulator) -> None:
    sim.set_fault(FaultSpec(kind="down"))
    async with httpx.AsyncClient(timeout=5.0) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"{sim.url}/health")
    assert sim.fault_state()["listening"] is False
    sim.clear_faults()
    await wait_for(lambda: _healthy(sim))


async def test_down_with_seconds_comes_back_by_itself(sim: Simulator) -> None:
    sim.set_fault(FaultSpec(kind="down", seconds=0.3))
    async with httpx.AsyncClient(timeout=5.0) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"{sim.url}/health")
    await wait_for(lambda: _healthy(sim))


async def test_down_drops_open_connections(sim: Simulator) -> None:
    async with (
        httpx.AsyncClient(base_url=sim.url, timeout=5.0) as c,
        c.stream("POST", "/v1/chat/completions", json=stream_body()) as r,
    ):
        sim.set_fault(FaultSpec(kind="down"))
        with pytest.raises(httpx.TransportError):
            await read_events(r)


async def test_crash_in_process_refuses_until_reset(sim: Simulator) -> None:
    sim.set_fault(FaultSpec(kind="crash"))
    assert sim.fault_state()["phase"] == "crashed"
    async with httpx.AsyncClient(timeout=5.0) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"{sim.url}/health")
    sim.clear_faults()
    await wait_for(lambda: _healthy(sim))


async def test_startup_phase_refuses_then_listens() -> None:
    sim = Simulator(SimulatorConfig(port=0, startup_seconds=0.4, ttft_seconds=0))
    await sim.start()
    try:
        assert sim.fault_state()["phase"] == "starting"
        async with httpx.AsyncClient(timeout=5.0) as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(f"{sim.url}/health")
        await sim.wait_ready()
        await wait_for(lambda: _healthy(sim))
    finally:
        await sim.stop()


async def test_hang_accepts_but_never_answers(sim: Simulator) -> None:
    sim.set_fault(FaultSpec(kind="hang"))
    async with httpx.AsyncClient(base_url=sim.url, timeout=SHORT) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/health")
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/v1/chat/completions", json=PROBE_BODY)
    sim.clear_faults()
    assert await _healthy(sim)


async def test_health_lies(sim: Simulator) -> None:
    sim.set_fault(FaultSpec(kind="health_lies"))
    async with httpx.AsyncClient(base_url=sim.url, timeout=SHORT) as c:
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/v1/models")).status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/v1/chat/completions", json=PROBE_BODY)
        async with c.stream("POST", "/v1/chat/completions", json=stream_body()) as r:
            assert r.status_code == 200  # headers come, tokens never do
            with pytest.raises(httpx.ReadTimeout):
                await read_events(r)


async def test_slow_adds_latency(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="slow", seconds=0.4))
    started = time.monotonic()
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.status_code == 200
    assert time.monotonic() - started >= 0.4
    assert r.json()["choices"][0]["message"]["content"] == "Paris"


async def test_error_rate_always(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="error_rate", rate=1.0, status=500))
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.status_code == 500
    assert shapes.mismatches(r.json(), shapes.ERROR) == []
    assert r.json()["error"]["type"] == "InternalServerError"
    sim.set_fault(FaultSpec(kind="error_rate", rate=1.0))
    statuses = {
        (await client.post("/v1/chat/completions", json=PROBE_BODY)).status_code for _ in range(30)
    }
    assert statuses == {500, 503}
    assert (await client.get("/health")).status_code == 200  # only completions fail


async def test_error_rate_share(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="error_rate", rate=0.5))
    statuses = [
        (await client.post("/v1/chat/completions", json=PROBE_BODY)).status_code for _ in range(40)
    ]
    assert 0 < statuses.count(200) < 40
    sim.set_fault(FaultSpec(kind="error_rate", rate=0.0))
    assert (await client.post("/v1/chat/completions", json=PROBE_BODY)).status_code == 200


async def test_loading_answers_503_then_recovers(sim: Simulator) -> None:
    sim.set_fault(FaultSpec(kind="loading", seconds=0.5))
    async with httpx.AsyncClient(base_url=sim.url, timeout=5.0) as c:
        r = await c.get("/health")
        assert r.status_code == 503
        assert r.json()["error"]["message"] == "Loading model"
        assert (await c.post("/v1/chat/completions", json=PROBE_BODY)).status_code == 503
    await wait_for(lambda: _healthy(sim))


async def test_garbage_body(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="garbage"))
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    async with client.stream("POST", "/v1/chat/completions", json=stream_body()) as s:
        assert s.status_code == 200
        assert await read_events(s) == []  # not a single SSE event
    models = await client.get("/v1/models")
    with pytest.raises(json.JSONDecodeError):
        json.loads(models.content)


async def test_wrong_answer(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="wrong_answer"))
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.json()["choices"][0]["message"]["content"] == "London"
    sim.set_fault(FaultSpec(kind="wrong_answer", answer="Lyon"))
    async with client.stream("POST", "/v1/chat/completions", json=stream_body()) as s:
        events = await read_events(s)
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
    assert text == "Lyon"


async def test_stall_is_a_hung_vllm_engine_headers_then_nothing(sim: Simulator) -> None:
    """vLLM sends the role chunk with the engine core's first output: a hung core sends none."""
    sim.set_fault(FaultSpec(kind="stall", after_tokens=1))
    seen: list[str] = []
    async with (
        httpx.AsyncClient(base_url=sim.url, timeout=SHORT) as c,
        c.stream("POST", "/v1/chat/completions", json=stream_body()) as r,
    ):
        assert r.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            async for line in r.aiter_lines():
                if line:
                    seen.append(line)
    assert seen == []


async def test_drip_trickles_bytes(sim: Simulator) -> None:
    sim.set_fault(FaultSpec(kind="drip", seconds=0.01, chunk_bytes=8))
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    started = time.monotonic()
    writer.write(b"GET /version HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    await writer.drain()
    reads: list[bytes] = []
    while data := await reader.read(65536):
        reads.append(data)
    writer.close()
    response = b"".join(reads)
    assert response.startswith(b"HTTP/1.1 200 OK")
    pieces = -(-len(response) // 8)
    assert time.monotonic() - started >= (pieces - 1) * 0.01
    assert len(reads) > 1


async def test_reset_truncates_stream_without_done(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.set_fault(FaultSpec(kind="reset", after_tokens=1))
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", "/v1/chat/completions", json=stream_body()) as r:
            async for line in r.aiter_lines():
                lines.append(line)
    assert "data: [DONE]" not in lines
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/v1/chat/completions", json=PROBE_BODY)


async def test_model_swap(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="model_swap", model="meta-llama/Llama-3.2-1B-Instruct"))
    models = (await client.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == ["meta-llama/Llama-3.2-1B-Instruct"]
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.status_code == 404
    assert r.json()["error"]["param"] == "model"
    sim.clear_faults()
    assert (await client.get("/v1/models")).json()["data"][0]["id"] == MODEL


async def test_overloaded_queues_but_answers(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="overloaded", seconds=0.3, waiting=40))
    started = time.monotonic()
    task = asyncio.create_task(client.post("/v1/chat/completions", json=PROBE_BODY))
    await asyncio.sleep(0.1)
    state = sim.fault_state()
    assert state["engine"]["waiting"] >= 41  # phantom queue plus our request
    r = await task
    assert r.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_faults_combine_and_clear(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="slow", seconds=0.2))
    sim.set_fault(FaultSpec(kind="wrong_answer"))
    kinds = {f["kind"] for f in sim.fault_state()["faults"]}
    assert kinds == {"slow", "wrong_answer"}
    started = time.monotonic()
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.json()["choices"][0]["message"]["content"] == "London"
    assert time.monotonic() - started >= 0.2
    sim.clear_fault("wrong_answer")
    assert [f["kind"] for f in sim.fault_state()["faults"]] == ["slow"]
    sim.clear_faults()
    assert sim.fault_state()["faults"] == []
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.json()["choices"][0]["message"]["content"] == "Paris"


async def test_fault_duration_expires(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="wrong_answer", duration=0.2))
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.json()["choices"][0]["message"]["content"] == "London"
    await asyncio.sleep(0.3)
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.json()["choices"][0]["message"]["content"] == "Paris"


async def test_faults_at_start() -> None:
    cfg = SimulatorConfig(port=0, ttft_seconds=0, faults=(FaultSpec(kind="wrong_answer"),))
    sim = Simulator(cfg)
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.url, timeout=5) as c:
            r = await c.post("/v1/chat/completions", json=PROBE_BODY)
            assert r.json()["choices"][0]["message"]["content"] == "London"
    finally:
        await sim.stop()
