"""Responses compared field by field (keys and types) with shapes transcribed from vLLM."""

from __future__ import annotations

import re

import httpx

from exporter.simulate import Simulator
from tests.simulate import vllm_shapes as shapes
from tests.simulate.conftest import MODEL, PROBE_BODY, read_events, stream_body


async def test_health_is_200_with_empty_body(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"


async def test_models_list_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/models")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert shapes.mismatches(body, shapes.MODEL_LIST) == []
    assert body["object"] == "list"
    card = body["data"][0]
    assert (card["id"], card["object"], card["owned_by"]) == (MODEL, "model", "vllm")
    assert card["max_model_len"] == 262144
    assert card["root"] == MODEL


async def test_version(client: httpx.AsyncClient) -> None:
    r = await client.get("/version")
    assert r.status_code == 200
    assert re.fullmatch(r"\d+\.\d+\.\d+", r.json()["version"])


async def test_non_streaming_completion_shape(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=PROBE_BODY)
    assert r.status_code == 200
    body = r.json()
    assert shapes.mismatches(body, shapes.CHAT_COMPLETION) == []
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{32}", body["id"])
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Paris"
    assert choice["message"]["tool_calls"] == []
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 10 <= usage["prompt_tokens"] <= 40
    assert usage["completion_tokens"] <= PROBE_BODY["max_tokens"]


async def test_streaming_chunk_sequence(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/v1/chat/completions", json=stream_body()) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["transfer-encoding"] == "chunked"
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    # Every event is "data: <json>\n\n".
    events_raw = raw.split(b"\n\n")
    assert events_raw[-1] == b""
    assert all(e.startswith(b"data: ") for e in events_raw[:-1])
    assert events_raw[-2] == b"data: [DONE]"


async def test_streaming_chunks_match_vllm(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/v1/chat/completions", json=stream_body()) as r:
        events = await read_events(r)
    assert events[-1] == "[DONE]"
    role, *deltas, finish, usage_chunk, _done = events
    assert shapes.mismatches(role, shapes.CHUNK_ROLE) == []
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    for chunk in deltas:
        assert shapes.mismatches(chunk, shapes.CHUNK_CONTENT) == []
    assert shapes.mismatches(finish, shapes.CHUNK_FINISH) == []
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert shapes.mismatches(usage_chunk, shapes.CHUNK_USAGE) == []
    assert usage_chunk["choices"] == []
    text = "".join(c["choices"][0]["delta"]["content"] for c in [*deltas, finish])
    assert text == "Paris"
    assert len(deltas) >= 2  # tokenised into a few deltas
    ids = {e["id"] for e in events[:-1]}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert {e["object"] for e in events[:-1]} == {"chat.completion.chunk"}
    assert {e["model"] for e in events[:-1]} == {MODEL}


async def test_no_usage_chunk_without_stream_options(client: httpx.AsyncClient) -> None:
    body = {**PROBE_BODY, "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        events = await read_events(r)
    assert events[-1] == "[DONE]"
    assert all("usage" not in e for e in events[:-1])


async def test_max_tokens_cut_gives_length(client: httpx.AsyncClient) -> None:
    body = {**PROBE_BODY, "max_tokens": 1}
    r = await client.post("/v1/chat/completions", json=body)
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == "Par"
    assert r.json()["usage"]["completion_tokens"] == 1


async def test_other_prompts_get_deterministic_answers(client: httpx.AsyncClient) -> None:
    body = {**PROBE_BODY, "messages": [{"role": "user", "content": "Tell me a story."}]}
    first = (await client.post("/v1/chat/completions", json=body)).json()
    second = (await client.post("/v1/chat/completions", json=body)).json()
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    assert first["choices"][0]["finish_reason"] == "length"  # 12+ words > 8 tokens
    assert first["usage"]["completion_tokens"] == 8
    long = {**body, "max_tokens": 500}
    done = (await client.post("/v1/chat/completions", json=long)).json()
    assert done["choices"][0]["finish_reason"] == "stop"
    assert done["choices"][0]["message"]["content"].endswith(".")


async def test_unknown_model_is_404_not_found_error(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={**PROBE_BODY, "model": "nope"})
    assert r.status_code == 404
    body = r.json()
    assert shapes.mismatches(body, shapes.ERROR) == []
    assert body["error"] == {
        "message": "The model `nope` does not exist.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }


async def test_bad_requests_are_400(client: httpx.AsyncClient) -> None:
    cases = [
        dict(content=b"{not json", headers={"content-type": "application/json"}),
        dict(json={"model": MODEL}),  # no messages
        dict(content=b"{}", headers={"content-type": "text/plain"}),
        dict(json={**PROBE_BODY, "stream_options": {"include_usage": True}}),
    ]
    for case in cases:
        r = await client.post("/v1/chat/completions", **case)  # type: ignore[arg-type]
        assert r.status_code == 400, case
        body = r.json()
        assert shapes.mismatches(body, shapes.ERROR) == []
        assert body["error"]["code"] == 400
        assert body["error"]["type"] == "Bad Request"


async def test_context_overflow_is_bad_request_error(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json={**PROBE_BODY, "max_tokens": 10**7})
    assert r.status_code == 400
    err = r.json()["error"]
    assert (err["type"], err["param"], err["code"]) == ("BadRequestError", "max_tokens", 400)


async def test_api_key_guards_only_v1() -> None:
    from exporter.simulate import SimulatorConfig

    sim = Simulator(SimulatorConfig(port=0, api_key="s3cret", ttft_seconds=0))
    await sim.start()
    try:
        async with httpx.AsyncClient(base_url=sim.url, timeout=10) as c:
            r = await c.get("/v1/models")
            assert r.status_code == 401
            assert r.json() == {"error": "Unauthorized"}
            assert shapes.mismatches(r.json(), shapes.UNAUTHORIZED) == []
            wrong = await c.get("/v1/models", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401
            ok = await c.get("/v1/models", headers={"authorization": "Bearer s3cret"})
            assert ok.status_code == 200
            assert (await c.get("/health")).status_code == 200
            metrics = await c.get("/metrics")
            assert metrics.status_code == 200
            assert "s3cret" not in metrics.text
            state = sim.fault_state()
            assert "s3cret" not in repr(state) and "s3cret" not in repr(sim.config)
    finally:
        await sim.stop()


async def test_keep_alive_serves_many_requests_on_one_connection(sim: Simulator) -> None:
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(base_url=sim.url, limits=limits, timeout=10) as c:
        for _ in range(5):
            assert (await c.get("/health")).status_code == 200
            assert (await c.post("/v1/chat/completions", json=PROBE_BODY)).status_code == 200
    assert sim.stats.connections == 1
    assert sim.stats.requests == 10


async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404
    assert shapes.mismatches(r.json(), shapes.ERROR) == []
    r = await client.get("/v1/chat/completions")
    assert r.status_code == 405
