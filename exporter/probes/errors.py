"""Reading the error bodies OpenAI-compatible servers send, in all their dialects."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["error_message"]


def error_message(payload: bytes | Any) -> str | None:
    """The human message of an error body, or None when it is not one we know.

    vLLM >= 0.10.1 and llama.cpp: {"error": {"message", "type", "code"}}; older vLLM:
    {"object": "error", "message"}; vLLM's API-key guard and TGI: {"error": "text"}.
    """
    obj = payload
    if isinstance(payload, bytes | bytearray):
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return None
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, dict):
        msg = err.get("message")
        kind = err.get("type")
        if isinstance(msg, str):
            return f"{kind}: {msg}" if isinstance(kind, str) and kind else msg
    if isinstance(err, str):
        return err
    if obj.get("object") == "error" and isinstance(obj.get("message"), str):
        return str(obj["message"])
    return None
