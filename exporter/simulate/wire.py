"""vLLM's OpenAI-compatible response shapes, transcribed from its source.

Source (vllm-project/vllm, v0.10.2/v0.11 era): `vllm/entrypoints/openai/protocol.py`
(ModelCard, ModelList, ModelPermission, UsageInfo, ChatMessage, ChatCompletionResponse*,
DeltaMessage, ErrorInfo/ErrorResponse) and `serving_chat.py`:

- non-streaming answers are `response.model_dump()`: every field, nulls included;
- stream chunks are `chunk.model_dump_json(exclude_unset=True)`: only fields passed to
  the constructor appear, so explicitly passed `None`s stay (`logprobs`, `finish_reason`,
  `prompt_token_ids` on the first chunk, `token_ids`) while unset ones are left out;
- the usage chunk is dumped with `exclude_unset=True, exclude_none=True`;
- errors since v0.10.1 are `{"error": {"message", "type", "param", "code"}}`.

Own code on purpose: the exporter's probes parse these shapes from the same source, and a
mistake shared by both could not be caught by the tests.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

__all__ = [
    "DONE",
    "chat_completion",
    "chunk_content",
    "chunk_finish",
    "chunk_role",
    "chunk_usage",
    "dumps",
    "error_body",
    "model_list",
    "new_request_id",
    "sse",
    "usage",
]

DONE = b"data: [DONE]\n\n"
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"


def dumps(obj: Any) -> bytes:
    """Compact JSON like pydantic's model_dump_json and Starlette's JSONResponse."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def new_request_id() -> str:
    """`chatcmpl-` + vLLM's random_uuid() (uuid4 hex)."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def error_body(message: str, err_type: str, code: int, param: str | None = None) -> bytes:
    """ErrorResponse(error=ErrorInfo(...)).model_dump()."""
    return dumps({"error": {"message": message, "type": err_type, "param": param, "code": code}})


def model_list(model: str, max_model_len: int, created: int | None = None) -> dict[str, Any]:
    """OpenAIServingModels.show_available_models(): one card for the served model."""
    created = int(time.time()) if created is None else created
    permission = {
        "id": f"modelperm-{uuid.uuid4().hex}",
        "object": "model_permission",
        "created": created,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }
    card = {
        "id": model,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": model,
        "parent": None,
        "max_model_len": max_model_len,
        "permission": [permission],
    }
    return {"object": "list", "data": [card]}


def usage(prompt_tokens: int, completion_tokens: int, full: bool) -> dict[str, Any]:
    """UsageInfo; `full` keeps prompt_tokens_details (null) as model_dump() does."""
    out: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }
    if full:
        out["prompt_tokens_details"] = None
    return out


def chat_completion(
    request_id: str,
    created: int,
    model: str,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """ChatCompletionResponse(...).model_dump() for one choice without tools or logprobs."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": [],
        "reasoning_content": None,
    }
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason,
        "stop_reason": None,
        "token_ids": None,
    }
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": usage(prompt_tokens, completion_tokens, full=True),
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "kv_transfer_params": None,
    }


def _chunk(request_id: str, created: int, model: str, choices: list[Any]) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }


def chunk_role(request_id: str, created: int, model: str) -> dict[str, Any]:
    """First chunk: role with empty content; prompt_token_ids passed explicitly as None."""
    choice = {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    }
    out = _chunk(request_id, created, model, [choice])
    out["prompt_token_ids"] = None
    return out


def chunk_content(request_id: str, created: int, model: str, text: str) -> dict[str, Any]:
    """A token delta while generation goes on."""
    choice = {
        "index": 0,
        "delta": {"content": text},
        "logprobs": None,
        "finish_reason": None,
        "token_ids": None,
    }
    return _chunk(request_id, created, model, [choice])


def chunk_finish(
    request_id: str, created: int, model: str, text: str, finish_reason: str
) -> dict[str, Any]:
    """The last token's delta (empty text for the end-of-sequence token) with the reason."""
    choice = {
        "index": 0,
        "delta": {"content": text},
        "logprobs": None,
        "finish_reason": finish_reason,
        "stop_reason": None,
        "token_ids": None,
    }
    return _chunk(request_id, created, model, [choice])


def chunk_usage(
    request_id: str, created: int, model: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """The usage chunk: no choices; exclude_none drops prompt_tokens_details."""
    out = _chunk(request_id, created, model, [])
    out["usage"] = usage(prompt_tokens, completion_tokens, full=False)
    return out
