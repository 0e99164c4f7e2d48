"""Response shapes transcribed from vLLM's source, as key -> type trees.

Transcribed by hand from vllm-project/vllm (v0.10.2/v0.11 era), not from the simulator:
- `vllm/entrypoints/openai/protocol.py`: ModelPermission, ModelCard, ModelList, UsageInfo,
  ChatMessage, ChatCompletionResponseChoice (+ token_ids), ChatCompletionResponse
  (+ prompt_token_ids), DeltaMessage, ChatCompletionResponseStreamChoice,
  ChatCompletionStreamResponse, ErrorInfo, ErrorResponse;
- `serving_chat.py` chat_completion_stream_generator: which fields are passed to each
  chunk's constructor (model_dump_json(exclude_unset=True) keeps exactly those), the
  usage chunk dumped with exclude_unset and exclude_none;
- `serving_chat.py` chat_completion_full_generator + api_server: `model_dump()` (all
  fields, nulls included) for non-streaming answers;
- `api_server.py` AuthenticationMiddleware: 401 {"error": "Unauthorized"}.

A schema is a type, a tuple of types (None meaning null), a dict (exact keys), or a
one-element list (every item matches).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CHAT_COMPLETION",
    "CHUNK_CONTENT",
    "CHUNK_FINISH",
    "CHUNK_ROLE",
    "CHUNK_USAGE",
    "ERROR",
    "MODEL_LIST",
    "UNAUTHORIZED",
    "mismatches",
]

OptStr = (str, None)

MODEL_PERMISSION = {
    "id": str,
    "object": str,
    "created": int,
    "allow_create_engine": bool,
    "allow_sampling": bool,
    "allow_logprobs": bool,
    "allow_search_indices": bool,
    "allow_view": bool,
    "allow_fine_tuning": bool,
    "organization": str,
    "group": OptStr,
    "is_blocking": bool,
}
MODEL_CARD = {
    "id": str,
    "object": str,
    "created": int,
    "owned_by": str,
    "root": OptStr,
    "parent": OptStr,
    "max_model_len": (int, None),
    "permission": [MODEL_PERMISSION],
}
MODEL_LIST = {"object": str, "data": [MODEL_CARD]}

USAGE_FULL = {
    "prompt_tokens": int,
    "total_tokens": int,
    "completion_tokens": (int, None),
    "prompt_tokens_details": (dict, None),
}
CHAT_MESSAGE = {
    "role": str,
    "content": OptStr,
    "refusal": OptStr,
    "annotations": (dict, None),
    "audio": (dict, None),
    "function_call": (dict, None),
    "tool_calls": [dict],
    "reasoning_content": OptStr,
}
CHAT_CHOICE = {
    "index": int,
    "message": CHAT_MESSAGE,
    "logprobs": (dict, None),
    "finish_reason": OptStr,
    "stop_reason": (int, str, None),
    "token_ids": (list, None),
}
CHAT_COMPLETION = {
    "id": str,
    "object": str,
    "created": int,
    "model": str,
    "choices": [CHAT_CHOICE],
    "service_tier": OptStr,
    "system_fingerprint": OptStr,
    "usage": USAGE_FULL,
    "prompt_logprobs": (list, None),
    "prompt_token_ids": (list, None),
    "kv_transfer_params": (dict, None),
}

# First chunk: ChatCompletionResponseStreamChoice(index, delta=DeltaMessage(role, content=""),
# logprobs=None, finish_reason=None); ChatCompletionStreamResponse(id, object, created,
# choices, model, prompt_token_ids=None).
CHUNK_ROLE = {
    "id": str,
    "object": str,
    "created": int,
    "model": str,
    "choices": [
        {
            "index": int,
            "delta": {"role": str, "content": str},
            "logprobs": (dict, None),
            "finish_reason": OptStr,
        }
    ],
    "prompt_token_ids": (list, None),
}
# Token chunk: choice(index, delta=DeltaMessage(content=...), logprobs, finish_reason=None,
# token_ids=None); chunk(id, object, created, choices, model).
CHUNK_CONTENT = {
    "id": str,
    "object": str,
    "created": int,
    "model": str,
    "choices": [
        {
            "index": int,
            "delta": {"content": str},
            "logprobs": (dict, None),
            "finish_reason": OptStr,
            "token_ids": (list, None),
        }
    ],
}
# Last token: also finish_reason=<reason> and stop_reason=output.stop_reason.
CHUNK_FINISH = {
    "id": str,
    "object": str,
    "created": int,
    "model": str,
    "choices": [
        {
            "index": int,
            "delta": {"content": str},
            "logprobs": (dict, None),
            "finish_reason": str,
            "stop_reason": (int, str, None),
            "token_ids": (list, None),
        }
    ],
}
# Usage chunk: choices=[] and usage=UsageInfo(prompt, completion, total); exclude_none.
CHUNK_USAGE = {
    "id": str,
    "object": str,
    "created": int,
    "model": str,
    "choices": [dict],
    "usage": {"prompt_tokens": int, "total_tokens": int, "completion_tokens": int},
}
ERROR = {"error": {"message": str, "type": str, "param": OptStr, "code": int}}
UNAUTHORIZED = {"error": str}


def mismatches(value: Any, schema: Any, where: str = "$") -> list[str]:
    """Every place where `value` differs from `schema` in keys or types (empty: conforms)."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected object, got {type(value).__name__}"]
        out = [f"{where}: missing key {k!r}" for k in schema if k not in value]
        out += [f"{where}: unexpected key {k!r}" for k in value if k not in schema]
        for key, sub in schema.items():
            if key in value:
                out += mismatches(value[key], sub, f"{where}.{key}")
        return out
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: expected list, got {type(value).__name__}"]
        return [
            m for i, item in enumerate(value) for m in mismatches(item, schema[0], f"{where}[{i}]")
        ]
    types = schema if isinstance(schema, tuple) else (schema,)
    if value is None:
        return [] if None in types else [f"{where}: null not allowed"]
    real = tuple(t for t in types if t is not None)
    if isinstance(value, bool) and bool not in real:
        return [f"{where}: bool where {real} expected"]
    if not isinstance(value, real):
        return [f"{where}: {type(value).__name__} where {real} expected"]
    return []
