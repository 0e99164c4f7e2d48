"""/metrics parsed with prometheus_client's own text parser: vLLM's names, types, labels,
and counters that move with the traffic served."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulate import FaultSpec, Simulator
from tests.simulate.conftest import MODEL, PROBE_BODY, read_events, stream_body

EXPECTED_TYPES = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:request_prefill_time_seconds": "histogram",
    "vllm:request_decode_time_seconds": "histogram",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
    "vllm:request_success": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:num_preemptions": "counter",
}


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def labels(**extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"model_name": MODEL, "engine": "0", **extra}.items()))


async def test_names_types_and_labels(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in EXPECTED_TYPES.items():
        assert name in families, name
        assert families[name].type == kind, name
        for sample in families[name].samples:
            if sample.name.endswith("_created"):
                continue
            assert sample.labels["model_name"] == MODEL
            assert sample.labels["engine"] == "0"
    assert "vllm:gpu_cache_usage_perc" not in families  # gone in current vLLM
    reasons = {
        s.labels["finished_reason"]
        for s in families["vllm:request_success"].samples
        if s.name == "vllm:request_success_total"
    }
    assert reasons == {"stop", "length", "abort"}


async def test_counters_move_with_traffic(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    assert before[("vllm:request_success_total", labels(finished_reason="stop"))] == 0
    for _ in range(3):
        assert (await client.post("/v1/chat/completions", json=PROBE_BODY)).status_code == 200
    async with client.stream("POST", "/v1/chat/completions", json=stream_body()) as r:
        await read_events(r)
    cut = await client.post("/v1/chat/completions", json={**PROBE_BODY, "max_tokens": 1})
    usage = cut.json()["usage"]
    after = await scrape(client)
    assert after[("vllm:request_success_total", labels(finished_reason="stop"))] == 4
    assert after[("vllm:request_success_total", labels(finished_reason="length"))] == 1
    assert after[("vllm:prompt_tokens_total", labels())] == 5 * usage["prompt_tokens"]
    assert after[("vllm:generation_tokens_total", labels())] == 4 * 3 + 1
    assert after[("vllm:time_to_first_token_seconds_count", labels())] == 5
    assert after[("vllm:e2e_request_latency_seconds_count", labels())] == 5
    assert after[("vllm:request_queue_time_seconds_count", labels())] == 5
    assert after[("vllm:inter_token_latency_seconds_count", labels())] == 4 * 2
    assert after[("vllm:e2e_request_latency_seconds_sum", labels())] > 0
    assert after[("vllm:prefix_cache_hits_total", labels())] > 0  # the same prompt again
    assert after[("vllm:num_requests_running", labels())] == 0


async def test_gauges_follow_the_engine(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_fault(FaultSpec(kind="overloaded", waiting=25, seconds=0.2))
    samples = await scrape(client)
    assert samples[("vllm:num_requests_waiting", labels())] == 25
    assert samples[("vllm:kv_cache_usage_perc", labels())] >= 0.9
    sim.clear_faults()
    samples = await scrape(client)
    assert samples[("vllm:num_requests_waiting", labels())] == 0
    assert samples[("vllm:kv_cache_usage_perc", labels())] < 0.5


async def test_own_registry_per_simulator() -> None:
    from prometheus_client import REGISTRY

    from exporter.simulate import SimulatorConfig

    a, b = Simulator(SimulatorConfig(port=0)), Simulator(SimulatorConfig(port=0))
    assert a.metrics.registry is not b.metrics.registry
    assert (
        REGISTRY.get_sample_value("vllm:prompt_tokens_total", {"model_name": MODEL, "engine": "0"})
        is None
    )


async def test_generation_counter_moves_per_token_not_per_request(sim: Simulator) -> None:
    """vLLM v1 counts generated tokens every engine step: a request still streaming has
    already moved the counter (what an engine-progress check relies on)."""
    sim.set_fault(FaultSpec(kind="slow", token_seconds=0.2))
    async with (
        httpx.AsyncClient(base_url=sim.url, timeout=10.0) as c,
        c.stream("POST", "/v1/chat/completions", json=stream_body(max_tokens=8)) as r,
    ):
        async for line in r.aiter_lines():
            if '"content":"Par"' in line:
                break
        mid = await scrape(c)
        assert mid[("vllm:num_requests_running", labels())] == 1
        assert mid[("vllm:generation_tokens_total", labels())] >= 1
        assert mid[("vllm:request_success_total", labels(finished_reason="stop"))] == 0


async def test_stall_freezes_counters_with_work_pending(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    before = await scrape(client)
    sim.set_fault(FaultSpec(kind="stall", after_tokens=0, running=3))
    assert (await client.get("/health")).status_code == 200
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/v1/chat/completions", json=PROBE_BODY, timeout=0.5)
    stalled = [await scrape(client) for _ in range(3)]
    for samples in stalled:
        assert samples[("vllm:num_requests_running", labels())] >= 3
        gen = samples[("vllm:generation_tokens_total", labels())]
        assert gen == before[("vllm:generation_tokens_total", labels())]
    sim.clear_faults()
    assert (await client.post("/v1/chat/completions", json=PROBE_BODY)).status_code == 200
    after = await scrape(client)
    assert after[("vllm:generation_tokens_total", labels())] > gen


async def test_overload_queues_deep_fills_kv_and_keeps_generating(sim: Simulator) -> None:
    sim.set_fault(FaultSpec(kind="overload", waiting=40, seconds=1.5))
    async with httpx.AsyncClient(base_url=sim.url, timeout=10.0) as c:
        first = await scrape(c)
        await asyncio.sleep(0.3)
        second = await scrape(c)
        assert second[("vllm:num_requests_waiting", labels())] >= 40
        assert second[("vllm:kv_cache_usage_perc", labels())] >= 0.9
        key = ("vllm:generation_tokens_total", labels())
        assert second[key] > first[key]
        t0 = asyncio.get_running_loop().time()
        r = await c.post("/v1/chat/completions", json=PROBE_BODY)
        assert r.status_code == 200 and "Paris" in r.text
        assert asyncio.get_running_loop().time() - t0 >= 1.5  # answers, but late


def test_overload_answers_past_a_30s_deadline_by_default() -> None:
    assert FaultSpec(kind="overload").seconds == 40.0
