"""What the chat probe accepts as a real answer, as tables: the answer text against the
configured expectation (`validate_content`), and whole answers from a real local server
(vLLM's framing, tests/core/helpers.py) through `probe_chat`: whitespace is no answer, a
non-streamed answer needs its finish_reason, only choice 0 counts, the stall figure starts
at the first token. A prompt of one's own ("Say hi") accepts any text, so a whitespace answer
is refused by the whitespace rule itself, not by a missing "Paris"."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from exporter.config import ChatCheck
from exporter.probes import probe_chat
from exporter.probes.chat import build_request, validate_content
from exporter.probes.results import Reason

from .helpers import MODEL, chunk, vllm_stream
from .local_server import LocalServer

CHAT = "/v1/chat/completions"


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    await srv.start()
    yield srv
    await srv.stop()


@pytest.mark.parametrize(
    ("name", "spec", "content", "accepted"),
    [
        ("the default prompt's answer", {}, "Paris", True),
        ("expect_contains ignores case", {}, "PARIS.", True),
        ("expect_contains ignores case, lower", {}, "paris", True),
        ("expect_contains anywhere in the answer", {}, "It is Paris, France", True),
        ("a wrong answer", {}, "Lyon", False),
        ("whitespace only is no answer", {"prompt": "Say hi"}, " \n\t ", False),
        ("empty is no answer", {"prompt": "Say hi"}, "", False),
        ("any text for a prompt of one's own", {"prompt": "Say hi"}, "hi", True),
        ("a configured word, other case", {"prompt": "x", "expect_contains": "ok"}, "OK", True),
        ("expect_regex must match", {"prompt": "x", "expect_regex": r"^\d+$"}, "42", True),
        ("expect_regex is case-sensitive", {"prompt": "x", "expect_regex": "^OK$"}, "ok", False),
        ("json_mode: valid JSON", {"prompt": "x", "json_mode": True}, '{"a": 1}', True),
        ("json_mode: not JSON", {"prompt": "x", "json_mode": True}, "{a: 1", False),
    ],
)
def test_validate_content(name: str, spec: dict[str, Any], content: str, accepted: bool) -> None:
    problem = validate_content(ChatCheck(**spec), content)
    assert (problem is None) is accepted, (name, problem)
    if not content.strip():
        assert problem == "empty completion"


def completion(choice: dict[str, Any]) -> dict[str, Any]:
    """vLLM's non-streamed ChatCompletionResponse (protocol.py), with one choice."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [choice],
        "usage": {"prompt_tokens": 17, "total_tokens": 19, "completion_tokens": 2},
    }


def message(content: Any, **extra: Any) -> dict[str, Any]:
    return {"index": 0, "message": {"role": "assistant", "content": content}, **extra}


@pytest.mark.parametrize(
    ("name", "choice", "reason"),
    [
        ("a finished answer", message("Paris", finish_reason="stop"), None),
        ("cut at max_tokens is still an answer", message("Paris", finish_reason="length"), None),
        ("no finish_reason", message("Paris"), Reason.INVALID_RESPONSE),
        ("finish_reason null", message("Paris", finish_reason=None), Reason.INVALID_RESPONSE),
        ("finish_reason empty", message("Paris", finish_reason=""), Reason.INVALID_RESPONSE),
        ("whitespace content", message("  ", finish_reason="stop"), Reason.VALIDATION_FAILED),
        ("null content", message(None, finish_reason="stop"), Reason.VALIDATION_FAILED),
        ("content not a string", message(["Paris"], finish_reason="stop"), Reason.INVALID_RESPONSE),
        ("no message", {"index": 0, "finish_reason": "stop"}, Reason.INVALID_RESPONSE),
        (
            "a message that is no object",
            {"index": 0, "message": "Paris", "finish_reason": "stop"},
            Reason.INVALID_RESPONSE,
        ),
    ],
)
async def test_a_non_streamed_answer(
    server: LocalServer, name: str, choice: dict[str, Any], reason: Reason | None
) -> None:
    server.post(CHAT).respond(200, json=completion(choice))
    r = await probe_chat(server.context(checks={"chat": {"stream": False, "prompt": "Say hi"}}))
    assert r.reason is reason, (name, r.detail)
    assert r.success is (reason is None)
    if reason is Reason.INVALID_RESPONSE and "finish_reason" not in name:
        assert r.detail == "not a chat completion (application/json)", name
    if reason is None:
        assert (r.content, r.prompt_tokens, r.completion_tokens) == ("Paris", 17, 2)
        assert r.finish_reason == choice["finish_reason"]


def sse(events: list[dict[str, Any]], done: bool = True) -> bytes:
    out = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


def second(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """A chunk of choice 1 (a request with n=2): not the answer the probe judges."""
    c = chunk(delta, finish)
    c["choices"][0]["index"] = 1
    return c


@pytest.mark.parametrize(
    ("name", "events", "reason", "content"),
    [
        (
            "choice 1's text is not part of the answer",
            [
                chunk({"content": "Par"}),
                second({"content": "London"}),
                chunk({"content": "is"}, "stop"),
            ],
            None,
            "Paris",
        ),
        (
            "a choice without an index is choice 0",
            [{"choices": [{"delta": {"content": "Paris"}, "finish_reason": "stop"}]}],
            None,
            "Paris",
        ),
        (
            "choice 1 before choice 0 in one chunk",
            [
                {
                    "choices": [
                        second({"content": "x"})["choices"][0],
                        chunk({"content": "Paris"}, "stop")["choices"][0],
                    ]
                }
            ],
            None,
            "Paris",
        ),
        (
            "choice 1's finish_reason does not finish choice 0",
            [chunk({"content": "Paris"}), second({"content": "x"}, "stop")],
            Reason.STREAM_INCOMPLETE,
            "Paris",
        ),
        (
            "only whitespace streamed",
            [chunk({"content": " "}), chunk({"content": " "}, "stop")],
            Reason.VALIDATION_FAILED,
            "  ",
        ),
        (
            "an error event after the stream began",
            [chunk({"content": "Pa"}), {"error": {"message": "engine died", "code": 500}}],
            Reason.SERVER_ERROR,
            "Pa",
        ),
    ],
)
async def test_a_streamed_answer(
    server: LocalServer,
    name: str,
    events: list[dict[str, Any]],
    reason: Reason | None,
    content: str,
) -> None:
    server.post(CHAT).stream([sse(events)])
    r = await probe_chat(server.context(checks={"chat": {"prompt": "Say hi"}}))
    assert r.reason is reason, (name, r.detail)
    assert r.content == content, name


async def test_the_longest_stall_is_measured_from_the_first_token(server: LocalServer) -> None:
    """A slow first token is the ttft figure, not a stall of the stream."""
    wait = 0.6
    first, *rest = vllm_stream()
    server.post(CHAT).stream([first, b"".join(rest)], delay=wait)
    r = await probe_chat(server.context())
    assert r.success, r.detail
    assert r.ttft is not None and r.ttft >= wait
    assert r.max_stall is not None and r.max_stall < wait / 2, r.max_stall


async def test_usage_decode_speed_and_stall_from_the_stream(server: LocalServer) -> None:
    """Tokens after the first over the time from the first to the last content chunk; the
    longest gap between chunks once tokens flow. The server waits `gap` between its writes,
    so the measured gap is at least that, and at most the whole probe."""
    gap = 0.2
    parts = vllm_stream(["Par", "is"])
    usage = {"choices": [], "usage": {"prompt_tokens": 17, "completion_tokens": 11}}
    server.post(CHAT).stream([b"".join(parts[:2]), b"".join(parts[2:-2]) + sse([usage])], delay=gap)
    r = await probe_chat(server.context())
    assert r.success and (r.prompt_tokens, r.completion_tokens) == (17, 11)
    assert r.tokens_per_second is not None
    assert 10 / r.duration <= r.tokens_per_second <= 10 / gap
    assert r.max_stall is not None and gap <= r.max_stall <= r.duration
    server.post(CHAT).stream(vllm_stream(["Paris"], usage=False))
    r = await probe_chat(server.context())
    assert r.success and r.completion_tokens == 1 and r.tokens_per_second is None


@pytest.mark.parametrize(
    ("name", "spec", "model", "expected", "absent"),
    [
        (
            "the default: streamed, deterministic, usage asked for",
            {},
            MODEL,
            {"stream": True, "stream_options": {"include_usage": True}, "seed": 0, "model": MODEL},
            ["response_format"],
        ),
        ("no model known: the server's default", {}, None, {"stream": True}, ["model"]),
        (
            "not streamed: no stream_options",
            {"stream": False},
            MODEL,
            {"stream": False},
            ["stream_options"],
        ),
        ("no seed configured", {"seed": None}, MODEL, {"temperature": 0.0}, ["seed"]),
        (
            "json_mode asks for a JSON object",
            {"prompt": "x", "json_mode": True},
            MODEL,
            {"response_format": {"type": "json_object"}},
            [],
        ),
        ("max_tokens as configured", {"max_tokens": 3}, MODEL, {"max_tokens": 3}, []),
    ],
)
def test_the_request(
    name: str, spec: dict[str, Any], model: str | None, expected: dict[str, Any], absent: list[str]
) -> None:
    body = build_request(ChatCheck(**spec), model)
    for key, value in expected.items():
        assert body[key] == value, (name, key)
    for key in absent:
        assert key not in body, (name, key)
    assert body["messages"][-1]["role"] == "user"


def test_a_system_prompt_comes_first() -> None:
    body = build_request(ChatCheck(prompt="Say hi", system_prompt="Be brief."), MODEL)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi"},
    ]
    assert len(build_request(ChatCheck(prompt="Say hi"), MODEL)["messages"]) == 1


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        ("an event that is JSON but no object", b"data: [1, 2]\n\n", Reason.INVALID_RESPONSE),
        ("a chunk without a choices list", b'data: {"choices": 3}\n\n', Reason.INVALID_RESPONSE),
        ("an error event", b'data: {"error": {"message": "boom"}}\n\n', Reason.SERVER_ERROR),
        ("[DONE] with spaces around", b"".join(vllm_stream()[:-1]) + b"data:  [DONE] \n\n", None),
        ("not UTF-8", b"data: \xff\n\n", Reason.INVALID_RESPONSE),
        (
            "a chunk with neither choices nor an error",
            b'data: {"id": "x"}\n\n',
            Reason.INVALID_RESPONSE,
        ),
        ("what follows [DONE] is not read", b"".join(vllm_stream()) + b"data: {not json\n\n", None),
        (
            "what follows an error event is not read",
            b'data: {"error": {"message": "boom"}}\n\ndata: {not json\n\n',
            Reason.SERVER_ERROR,
        ),
    ],
)
async def test_stream_framing(
    server: LocalServer, name: str, raw: bytes, reason: Reason | None
) -> None:
    server.post(CHAT).stream([raw])
    r = await probe_chat(server.context())
    assert r.reason is reason, (name, r.detail)


async def test_token_counts_come_from_usage_and_only_integers(server: LocalServer) -> None:
    parts = vllm_stream(["Par", "is"], usage=False)
    usage = {"choices": [], "usage": {"prompt_tokens": True, "completion_tokens": 2.5}}
    server.post(CHAT).stream([*parts[:-1], sse([usage], done=True)])
    r = await probe_chat(server.context())
    assert r.success, r.detail
    assert r.prompt_tokens is None  # a bool is no count
    assert r.completion_tokens == 2  # no usable count: the content chunks


def test_a_wrong_answer_is_quoted_up_to_80_characters() -> None:
    answer = "L" * 100
    problem = validate_content(ChatCheck(), answer)
    assert problem is not None and repr(answer[:80]) in problem and repr(answer[:81]) not in problem


async def test_decode_speed_is_tokens_after_the_first_over_first_to_last(
    server: LocalServer,
) -> None:
    """The figure from the stream's own times: the gap between the first and the last content
    chunk is the longest stall here (one gap), so speed * stall = tokens - 1 exactly."""
    for words in (["Par", "is"], ["P", "a", "r", "i", "s"]):
        parts = vllm_stream(words)
        server.post(CHAT).stream([b"".join(parts[:2]), b"".join(parts[2:])], delay=0.1)
        r = await probe_chat(server.context())
        assert r.success and r.completion_tokens == len(words), r.detail
        assert r.tokens_per_second is not None and r.max_stall is not None
        assert r.tokens_per_second * r.max_stall == pytest.approx(len(words) - 1)


async def test_one_token_has_no_decode_speed(server: LocalServer) -> None:
    """One token, the finish_reason in a later chunk: nothing to divide."""
    parts = [sse([chunk({"content": "Paris"})], done=False), sse([chunk({}, "stop")])]
    server.post(CHAT).stream(parts, delay=0.1)
    r = await probe_chat(server.context())
    assert r.success and r.completion_tokens == 1, r.detail
    assert r.tokens_per_second is None


@pytest.mark.parametrize(
    ("size", "reason"), [(64 << 10, Reason.SERVER_ERROR), ((64 << 10) + 1, Reason.BODY_TOO_LARGE)]
)
async def test_an_error_page_is_read_up_to_64_kib(
    server: LocalServer, size: int, reason: Reason
) -> None:
    server.post(CHAT).respond(500, content=b"x" * size, headers={"Content-Type": "text/plain"})
    r = await probe_chat(server.context())
    assert r.reason is reason, r.detail


async def test_the_wrong_content_type_is_named(server: LocalServer) -> None:
    server.post(CHAT).respond(200, json={"ok": True})
    r = await probe_chat(server.context())
    assert r.detail == "expected text/event-stream, got 'application/json'"


async def test_no_choice_at_all_is_no_completion(server: LocalServer) -> None:
    server.post(CHAT).respond(200, json={**completion({}), "choices": []})
    r = await probe_chat(server.context(checks={"chat": {"stream": False}}))
    assert (r.reason, r.detail) == (
        Reason.INVALID_RESPONSE,
        "not a chat completion (application/json)",
    )


async def test_the_chat_request_carries_the_api_key(server: LocalServer) -> None:
    route = server.post(CHAT).stream(vllm_stream())
    r = await probe_chat(server.context(api_key="sk-secret"))
    assert r.success, r.detail
    assert route.calls[-1].headers["authorization"] == "Bearer sk-secret"


async def test_figures_of_an_answer_in_one_chunk(server: LocalServer) -> None:
    """One chunk with the whole answer: no stall, the time to first token in the phases too,
    the content kept up to 500 characters."""
    text = "Paris " * 100
    server.post(CHAT).stream([sse([chunk({"content": text}, "stop")])])
    r = await probe_chat(server.context())
    assert r.success, r.detail
    assert r.max_stall == 0.0
    assert r.ttft is not None and r.phases["ttft"] == pytest.approx(r.ttft, abs=1e-6)
    assert 0 < r.phases["ttft"] <= r.duration
    assert r.content == text[:500]


async def test_nothing_after_done_is_read_even_in_later_reads(server: LocalServer) -> None:
    server.post(CHAT).stream([b"".join(vllm_stream()), b"data: {not json\n\n"], delay=0.05)
    r = await probe_chat(server.context())
    assert r.success, r.detail


async def test_a_long_non_streamed_answer_is_kept_up_to_500_characters(server: LocalServer) -> None:
    text = "Paris " * 100
    server.post(CHAT).respond(200, json=completion(message(text, finish_reason="stop")))
    r = await probe_chat(server.context(checks={"chat": {"stream": False}}))
    assert r.success and r.content == text[:500]


def test_a_regex_mismatch_is_quoted_up_to_80_characters() -> None:
    answer = "L" * 100
    problem = validate_content(ChatCheck(prompt="x", expect_regex="^P"), answer)
    assert problem is not None and repr(answer[:80]) in problem and repr(answer[:81]) not in problem


def test_an_answer_that_is_not_json_is_quoted_up_to_80_characters() -> None:
    answer = "{" * 100
    problem = validate_content(ChatCheck(prompt="x", json_mode=True), answer)
    assert problem is not None and repr(answer[:80]) in problem and repr(answer[:81]) not in problem


async def test_a_non_streamed_answer_is_choice_0(server: LocalServer) -> None:
    body = completion(message("Paris", finish_reason="stop"))
    body["choices"].append({**message("London", finish_reason="stop"), "index": 1})
    server.post(CHAT).respond(200, json=body)
    r = await probe_chat(server.context(checks={"chat": {"stream": False}}))
    assert r.success and r.content == "Paris"


async def test_what_is_not_json_or_utf8_says_so(server: LocalServer) -> None:
    server.post(CHAT).stream([b"data: \xff\n\n"])
    r = await probe_chat(server.context())
    assert (r.reason, r.detail) == (Reason.INVALID_RESPONSE, "stream is not valid UTF-8")
    server.post(CHAT).respond(
        200, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    r = await probe_chat(server.context(checks={"chat": {"stream": False}}))
    assert (r.reason, r.detail) == (
        Reason.INVALID_RESPONSE,
        "not a chat completion (application/json)",
    )


async def test_a_finish_without_content_is_an_empty_answer_whatever_usage_says(
    server: LocalServer,
) -> None:
    usage = {"choices": [], "usage": {"prompt_tokens": 17, "completion_tokens": 5}}
    server.post(CHAT).stream([sse([chunk({"role": "assistant"}), chunk({}, "stop"), usage])])
    r = await probe_chat(server.context(checks={"chat": {"prompt": "Say hi"}}))
    assert (r.reason, r.detail) == (Reason.VALIDATION_FAILED, "empty completion")
    assert r.completion_tokens == 5 and r.tokens_per_second is None
