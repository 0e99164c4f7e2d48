"""POST /v1/chat/completions: a real generation, streamed, so time to first token is seen.

Follows vLLM's wire format (vllm/entrypoints/openai/serving_chat.py): a role chunk, content
deltas, a chunk carrying finish_reason, a usage chunk with `choices: []` when asked
(include_usage), then `data: [DONE]`; a late error is `data: {"error": ...}` after HTTP 200."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from exporter.config import ChatCheck
from exporter.probes._base import Attempt, answered, guarded, http_failure
from exporter.probes._http import (
    ProbeContext,
    iter_bounded,
    read_bounded,
    request_headers,
    timeouts,
)
from exporter.probes.errors import error_message
from exporter.probes.results import Check, ProbeResult, Reason
from exporter.probes.route import route_for
from exporter.probes.sse import SSEDecoder

__all__ = ["build_request", "probe_chat", "validate_content"]


def build_request(spec: ChatCheck, model: str | None) -> dict[str, Any]:
    """The request body: deterministic (temperature 0, fixed seed) and cheap (few tokens)."""
    messages = []
    if spec.system_prompt:
        messages.append({"role": "system", "content": spec.system_prompt})
    messages.append({"role": "user", "content": spec.prompt})
    body: dict[str, Any] = {
        "messages": messages,
        "max_tokens": spec.max_tokens,
        "temperature": spec.temperature,
        "stream": spec.stream,
    }
    if model is not None:
        body["model"] = model
    if spec.seed is not None:
        body["seed"] = spec.seed
    if spec.user is not None:
        body["user"] = spec.user
    if spec.stream:
        body["stream_options"] = {"include_usage": True}
    if spec.json_mode:
        body["response_format"] = {"type": "json_object"}
    return body


def validate_content(spec: ChatCheck, content: str) -> str | None:
    """None when the answer is acceptable, else why not."""
    if not content.strip():
        return "empty completion"
    if spec.expect_contains is not None and spec.expect_contains.lower() not in content.lower():
        return f"answer {content[:80]!r} does not contain {spec.expect_contains!r}"
    if spec.expect_regex is not None and not re.search(spec.expect_regex, content):
        return f"answer {content[:80]!r} does not match {spec.expect_regex!r}"
    if spec.json_mode:
        try:
            json.loads(content)
        except ValueError:
            return f"answer {content[:80]!r} is not valid JSON"
    return None


@dataclass
class _Stream:
    """What the stream has told us so far."""

    started: float
    content: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    last_event_at: float | None = None
    last_token_at: float | None = None
    max_stall: float = 0.0
    content_chunks: int = 0
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    done: bool = False
    error: str | None = None

    def event(self, data: str, now: float) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        obj = json.loads(data)
        if not isinstance(obj, dict):
            raise ValueError("an SSE event is not a JSON object")
        if "error" in obj and "choices" not in obj:
            self.error = error_message(obj) or "error event in stream"
            return
        if self.first_token_at is not None and self.last_event_at is not None:
            self.max_stall = max(self.max_stall, now - self.last_event_at)
        self.last_event_at = now
        choices = obj.get("choices")
        if not isinstance(choices, list):
            raise ValueError("a chunk has no choices list")
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                if self.first_token_at is None:
                    self.first_token_at = now
                self.last_token_at = now
                self.content.append(text)
                self.content_chunks += 1
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
                self.last_token_at = now  # vLLM may send the end-of-sequence token here
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = _int(usage.get("prompt_tokens"))
            self.completion_tokens = _int(usage.get("completion_tokens"))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _tokens_per_second(tokens: int | None, first: float | None, last: float | None) -> float | None:
    """Decode speed: the tokens after the first over the time from the first content chunk to
    the finishing chunk. None when unmeasurable (one token, or everything in one read)."""
    if tokens is None or first is None or last is None or tokens < 2 or last <= first:
        return None
    return (tokens - 1) / (last - first)


class _Deadlines:
    """The streaming deadlines inside the total one: the first token within `ttft_timeout`,
    then each chunk within `chunk_timeout` of the last. `scope` is rescheduled as chunks come."""

    def __init__(self, spec: ChatCheck) -> None:
        self.ttft = spec.ttft_timeout if spec.stream else None
        self.gap = spec.chunk_timeout if spec.stream else None
        self.scope = asyncio.timeout(None)
        self.waiting_for = "first token"

    def start(self) -> None:
        if self.ttft is not None:
            self.scope.reschedule(asyncio.get_running_loop().time() + self.ttft)

    def chunk(self, streamed: bool) -> None:
        """A chunk came; once tokens flow, the next must follow within the gap."""
        if not streamed:
            return
        self.waiting_for = "next chunk"
        when = None if self.gap is None else asyncio.get_running_loop().time() + self.gap
        self.scope.reschedule(when)

    def detail(self) -> str:
        if self.waiting_for == "first token":
            return f"no first token within {self.ttft:g}s"
        return f"stream stalled: no chunk for {self.gap:g}s"


async def probe_chat(ctx: ProbeContext) -> ProbeResult:
    spec = ctx.target.checks.chat
    body = build_request(spec, ctx.model)

    async def run(attempt: Attempt) -> ProbeResult:
        deadlines = _Deadlines(spec)
        state = _Stream(started=attempt.t0)
        try:
            async with deadlines.scope:
                deadlines.start()
                return await exchange(attempt, deadlines, state)
        except TimeoutError:
            if not deadlines.scope.expired():
                raise
            return attempt.fail(Reason.TIMEOUT, deadlines.detail(), **_partial(state))

    async def exchange(attempt: Attempt, deadlines: _Deadlines, state: _Stream) -> ProbeResult:
        async with ctx.client.stream(
            "POST",
            ctx.target.url + spec.path,
            json=body,
            headers=request_headers(ctx.target, auth=True),
            timeout=timeouts(ctx.timeout),
            route=route_for(ctx.target),
        ) as response:
            answered(attempt, response)
            if response.status_code != 200:
                payload = await read_bounded(response, min(ctx.target.max_body_bytes, 64 << 10))
                return http_failure(attempt, payload)
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if spec.stream:
                if ctype != "text/event-stream":
                    return attempt.fail(
                        Reason.INVALID_RESPONSE,
                        f"expected text/event-stream, got {ctype or 'no content type'!r}",
                    )
                return await _read_stream(ctx, attempt, response, deadlines, state)
            payload = await read_bounded(response, ctx.target.max_body_bytes)
        return _read_whole(spec, attempt, payload, ctype)

    return await guarded(Check.CHAT, ctx, run, streaming=spec.stream)


async def _read_stream(
    ctx: ProbeContext, attempt: Attempt, response: Any, deadlines: _Deadlines, state: _Stream
) -> ProbeResult:
    spec = ctx.target.checks.chat
    decoder = SSEDecoder()
    try:
        async for chunk in iter_bounded(response, ctx.target.max_body_bytes):
            now = time.perf_counter()
            for data in decoder.feed(chunk):
                state.event(data, now)
                if state.error is not None or state.done:
                    break
            if state.error is not None or state.done:
                break
            deadlines.chunk(state.first_token_at is not None)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            detail = "stream is not valid UTF-8"
        elif isinstance(exc, json.JSONDecodeError):
            detail = "an SSE event is not valid JSON"
        else:
            detail = str(exc)
        return attempt.fail(Reason.INVALID_RESPONSE, detail, **_partial(state))
    ttft = None if state.first_token_at is None else state.first_token_at - attempt.t0
    if ttft is not None:
        attempt.phases["ttft"] = ttft
    if state.error is not None:
        return attempt.fail(
            Reason.SERVER_ERROR, f"error in stream: {state.error}", **_partial(state)
        )
    if not state.done:
        return attempt.fail(
            Reason.STREAM_INCOMPLETE, "stream ended without data: [DONE]", **_partial(state)
        )
    if state.finish_reason is None:
        return attempt.fail(
            Reason.STREAM_INCOMPLETE, "stream ended without a finish_reason", **_partial(state)
        )
    content = "".join(state.content)
    problem = validate_content(spec, content)
    if problem is not None:
        return attempt.fail(Reason.VALIDATION_FAILED, problem, **_partial(state))
    return attempt.ok(**_partial(state))


def _partial(state: _Stream) -> dict[str, Any]:
    """The figures the stream gave, for success and failure alike."""
    first = state.first_token_at
    tokens = state.completion_tokens
    if tokens is None and first is not None:
        tokens = state.content_chunks  # no usage chunk (some servers ignore include_usage)
    streamed = first is not None
    return {
        "ttft": first - state.started if first is not None else None,
        "max_stall": state.max_stall if streamed else None,
        "prompt_tokens": state.prompt_tokens,
        "completion_tokens": tokens,
        "tokens_per_second": _tokens_per_second(tokens, state.first_token_at, state.last_token_at),
        "content": "".join(state.content)[:500],
        "finish_reason": state.finish_reason,
    }


def _read_whole(spec: ChatCheck, attempt: Attempt, payload: bytes, ctype: str) -> ProbeResult:
    try:
        obj = json.loads(payload)
        choice = obj["choices"][0]
        content = choice["message"].get("content") or ""
        if not isinstance(content, str):
            raise TypeError
        finish = choice.get("finish_reason")
        usage = obj.get("usage") or {}
    except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return attempt.fail(
            Reason.INVALID_RESPONSE, f"not a chat completion ({ctype or 'no content type'})"
        )
    extra: dict[str, Any] = {
        "prompt_tokens": _int(usage.get("prompt_tokens")) if isinstance(usage, dict) else None,
        "completion_tokens": _int(usage.get("completion_tokens"))
        if isinstance(usage, dict)
        else None,
        "content": content[:500],
        "finish_reason": finish if isinstance(finish, str) else None,
    }
    if not finish:
        return attempt.fail(Reason.INVALID_RESPONSE, "answer has no finish_reason", **extra)
    problem = validate_content(spec, content)
    if problem is not None:
        return attempt.fail(Reason.VALIDATION_FAILED, problem, **extra)
    return attempt.ok(**extra)
