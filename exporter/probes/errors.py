"""Reading the error bodies OpenAI-compatible servers send, in all their dialects."""

from __future__ import annotations

import html
import json
import re
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
            return _html_title(payload)
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


_TITLE = re.compile(rb"<title[^>]*>([^<]{1,300})</title>", re.IGNORECASE)
_STATUS = re.compile(r"^\d{3}\s+")


def _html_title(payload: bytes | bytearray) -> str | None:
    """A gateway's HTML error page by its title, e.g. nginx's "400 No required SSL certificate
    was sent" when a client certificate is missing (only its first 4 KiB are looked at)."""
    found = _TITLE.search(payload[:4096])
    if found is None:
        return None
    title = " ".join(html.unescape(found.group(1).decode("utf-8", "replace")).split())
    return _STATUS.sub("", title)[:120] or None  # "HTTP 502" is said already
