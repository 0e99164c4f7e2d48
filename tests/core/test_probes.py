"""Each probe through the production transport against a real local server scripted per
test: what a user relies on each verdict to mean."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from exporter.config import ChatCheck
from exporter.probes import probe_chat, probe_health, probe_models
from exporter.probes.chat import build_request
from exporter.probes.results import Reason
from tests.conftest import free_port

from .helpers import MODEL, vllm_stream
from .local_server import LocalServer


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    await srv.start()
    yield srv
    await srv.stop()


# ---- health ---------------------------------------------------------------------------------
async def test_health_200_empty_body_is_healthy(server: LocalServer) -> None:
    server.get("/health").respond(200)
    r = await probe_health(server.context())
    assert r.success and r.status_code == 200 and r.reason is None


async def test_health_503_means_loading_not_unreachable(server: LocalServer) -> None:
    server.get("/health").respond(
        503, json={"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}}
    )
    r = await probe_health(server.context())
    assert not r.success and r.reason is Reason.LOADING and r.loading and r.answered
    assert "Loading model" in r.detail


async def test_health_connection_refused(server: LocalServer) -> None:
    r = await probe_health(server.context(url=f"http://127.0.0.1:{free_port()}"))
    assert r.reason is Reason.CONNECT_ERROR and not r.answered


async def test_health_server_that_never_answers_hits_the_deadline(server: LocalServer) -> None:
    async def hang(request: web.Request) -> web.Response:
        await server.hang()  # past the probe's deadline
        return web.Response()

    server.get("/health").handle(hang)
    r = await probe_health(server.context(timeout=0.2))
    assert r.reason is Reason.TIMEOUT and r.duration < 5


async def test_requests_carry_user_agent_and_api_key(server: LocalServer) -> None:
    route = server.get("/health").respond(200)
    await probe_health(server.context(api_key="sk-secret", headers={"X-Team": "ml"}))
    req = route.calls[-1]
    assert req.headers["user-agent"].startswith("llm-heartbeat/")
    assert req.headers["authorization"] == "Bearer sk-secret"
    assert req.headers["x-team"] == "ml"


async def test_unauthorized_is_its_own_reason_and_hides_the_key(server: LocalServer) -> None:
    server.get("/v1/models").respond(401, json={"error": "Unauthorized"})
    r = await probe_models(server.context(api_key="sk-secret"))
    assert r.reason is Reason.UNAUTHORIZED and "sk-secret" not in r.detail


# ---- models ---------------------------------------------------------------------------------
VLLM_MODELS = {
    "object": "list",
    "data": [
        {
            "id": MODEL,
            "object": "model",
            "created": 1764000000,
            "owned_by": "vllm",
            "root": MODEL,
            "parent": None,
            "max_model_len": 262144,
            "permission": [],
        }
    ],
}


async def test_models_lists_expected_model(server: LocalServer) -> None:
    server.get("/v1/models").respond(200, json=VLLM_MODELS)
    r = await probe_models(server.context())
    assert r.success and r.models == (MODEL,)


async def test_models_wrong_model_served(server: LocalServer) -> None:
    server.get("/v1/models").respond(200, json=VLLM_MODELS)
    r = await probe_models(server.context(model="meta-llama/Llama-3.1-8B"))
    assert r.reason is Reason.MODEL_MISSING and MODEL in r.detail


async def test_models_garbage_json(server: LocalServer) -> None:
    server.get("/v1/models").respond(200, text="<html>oops</html>")
    r = await probe_models(server.context())
    assert r.reason is Reason.INVALID_RESPONSE


async def test_models_oversized_body_is_refused(server: LocalServer) -> None:
    big = b"x" * (2 << 20)
    server.get("/v1/models").stream([big[: 1 << 20], big[1 << 20 :]], ctype="application/json")
    r = await probe_models(server.context())
    assert r.reason is Reason.BODY_TOO_LARGE


async def test_models_declared_oversize_is_refused_before_reading(server: LocalServer) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = 1 << 30  # declared, never sent
        await resp.prepare(request)
        await resp.write(b"{}")
        return resp

    server.get("/v1/models").handle(huge)
    r = await probe_models(server.context())
    assert r.reason is Reason.BODY_TOO_LARGE


# ---- chat -----------------------------------------------------------------------------------
def test_request_is_deterministic_and_asks_for_usage() -> None:
    body = build_request(ChatCheck(), MODEL)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0 and body["seed"] == 0 and body["max_tokens"] == 8
    assert body["model"] == MODEL and body["messages"][-1]["role"] == "user"


async def test_chat_stream_success_with_figures(server: LocalServer) -> None:
    route = server.post("/v1/chat/completions").stream(vllm_stream())
    r = await probe_chat(server.context())
    assert r.success, r.detail
    assert r.content == "Paris" and r.finish_reason == "stop"
    assert r.completion_tokens == 2 and r.prompt_tokens == 17
    assert r.ttft is not None and 0 <= r.ttft <= r.duration
    sent = json.loads(route.calls[-1].body)
    assert sent["stream"] is True


async def test_chat_events_split_across_reads_and_merged(server: LocalServer) -> None:
    raw = b"".join(vllm_stream())
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # split mid-line, mid-UTF-8 is ok too
    server.post("/v1/chat/completions").stream(pieces)
    r = await probe_chat(server.context())
    assert r.success and r.content == "Paris"
    server.post("/v1/chat/completions").stream([raw])
    r = await probe_chat(server.context())
    assert r.success and r.content == "Paris"


async def test_chat_crlf_framing_is_accepted(server: LocalServer) -> None:
    raw = b"".join(vllm_stream()).replace(b"\n", b"\r\n")
    server.post("/v1/chat/completions").stream([raw[:50], raw[50:]])
    r = await probe_chat(server.context())
    assert r.success, r.detail


async def test_chat_missing_done_is_incomplete(server: LocalServer) -> None:
    server.post("/v1/chat/completions").stream(vllm_stream(done=False))
    r = await probe_chat(server.context())
    assert r.reason is Reason.STREAM_INCOMPLETE and r.content == "Paris"


async def test_chat_missing_finish_reason_is_incomplete(server: LocalServer) -> None:
    server.post("/v1/chat/completions").stream(vllm_stream(finish=None))
    r = await probe_chat(server.context())
    assert r.reason is Reason.STREAM_INCOMPLETE


async def test_chat_error_json_with_status(server: LocalServer) -> None:
    server.post("/v1/chat/completions").respond(
        404,
        json={
            "error": {
                "message": "The model `x` does not exist.",
                "type": "NotFoundError",
                "param": "model",
                "code": 404,
            }
        },
    )
    r = await probe_chat(server.context())
    assert r.reason is Reason.HTTP_STATUS and r.status_code == 404 and "does not exist" in r.detail


async def test_chat_old_vllm_error_shape_and_500(server: LocalServer) -> None:
    server.post("/v1/chat/completions").respond(
        500,
        json={
            "object": "error",
            "message": "engine dead",
            "type": "InternalServerError",
            "param": None,
            "code": 500,
        },
    )
    r = await probe_chat(server.context())
    assert r.reason is Reason.SERVER_ERROR and "engine dead" in r.detail


async def test_chat_error_event_inside_200_stream(server: LocalServer) -> None:
    parts = [
        *vllm_stream(done=False)[:1],
        b'data: {"error":{"message":"CUDA error","type":"InternalServerError","param":null,"code":500}}\n\n',
        b"data: [DONE]\n\n",
    ]
    server.post("/v1/chat/completions").stream(parts)
    r = await probe_chat(server.context())
    assert r.reason is Reason.SERVER_ERROR and "CUDA error" in r.detail


async def test_chat_wrong_content_type(server: LocalServer) -> None:
    server.post("/v1/chat/completions").respond(200, json={"ok": True})
    r = await probe_chat(server.context())
    assert r.reason is Reason.INVALID_RESPONSE and "text/event-stream" in r.detail


async def test_chat_garbage_event(server: LocalServer) -> None:
    server.post("/v1/chat/completions").stream([b"data: {not json\n\n"])
    r = await probe_chat(server.context())
    assert r.reason is Reason.INVALID_RESPONSE


async def test_chat_wrong_answer_fails_validation(server: LocalServer) -> None:
    server.post("/v1/chat/completions").stream(vllm_stream(["Lon", "don"]))
    r = await probe_chat(server.context())
    assert r.reason is Reason.VALIDATION_FAILED and "London" in r.detail


async def test_chat_custom_prompt_accepts_any_nonempty_answer(server: LocalServer) -> None:
    server.post("/v1/chat/completions").stream(vllm_stream(["Hi"]))
    r = await probe_chat(server.context(checks={"chat": {"prompt": "Say hi"}}))
    assert r.success
    server.post("/v1/chat/completions").stream(vllm_stream([]))
    r = await probe_chat(server.context(checks={"chat": {"prompt": "Say hi"}}))
    assert r.reason is Reason.VALIDATION_FAILED and "empty" in r.detail


async def test_chat_regex_and_json_mode(server: LocalServer) -> None:
    server.post("/v1/chat/completions").stream(vllm_stream(['{"a":', " 1}"]))
    r = await probe_chat(server.context(checks={"chat": {"prompt": "json", "json_mode": True}}))
    assert r.success, r.detail
    r = await probe_chat(server.context(checks={"chat": {"prompt": "x", "expect_regex": r"^\d+$"}}))
    assert r.reason is Reason.VALIDATION_FAILED


async def test_chat_stream_over_the_byte_limit(server: LocalServer) -> None:
    endless = [
        b'data: {"choices":[{"index":0,"delta":{"content":"' + b"a" * 60000 + b'"}}]}\n\n'
    ] * 40
    server.post("/v1/chat/completions").stream(endless)
    r = await probe_chat(server.context())
    assert r.reason is Reason.BODY_TOO_LARGE


async def test_chat_drip_cannot_outlive_the_deadline(server: LocalServer) -> None:
    drip = [bytes([b]) for b in b"".join(vllm_stream())]
    server.post("/v1/chat/completions").stream(drip, delay=0.05)
    r = await probe_chat(server.context(timeout=0.5))
    assert r.reason is Reason.TIMEOUT and r.duration < 3


async def test_chat_non_streaming(server: LocalServer) -> None:
    server.post("/v1/chat/completions").respond(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Paris",
                        "refusal": None,
                        "tool_calls": [],
                        "reasoning_content": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                    "stop_reason": None,
                }
            ],
            "usage": {"prompt_tokens": 17, "total_tokens": 19, "completion_tokens": 2},
            "prompt_logprobs": None,
            "service_tier": None,
            "system_fingerprint": None,
        },
    )
    r = await probe_chat(server.context(checks={"chat": {"stream": False}}))
    assert r.success and r.completion_tokens == 2 and r.ttft is None
