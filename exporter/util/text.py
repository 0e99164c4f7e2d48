"""Text that came from a target, made safe to keep and to show.

A model server decides what its model ids, error messages and completions say. Valid JSON can
carry a lone surrogate (`"\\ud800"`) that no UTF-8 encoder accepts, control characters that
forge log lines, or a megabyte of text. Everything a probe keeps of a target's words passes
through `clean_text` once, where it enters; the views also encode defensively (`safe_json`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["clean_text", "clean_tree", "safe_json"]

# lone surrogates, C0/C1 controls (tab, newline and carriage return become spaces), and the
# Unicode line separators that some log viewers break lines on
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_BREAKS = re.compile("[\t\n\r\u2028\u2029]")


def clean_text(value: str, limit: int = 300) -> str:
    """`value` with every character a UTF-8 encoder, a log line or a label value would choke
    on replaced, cut to `limit` characters."""
    if len(value) > limit:
        value = value[: max(limit - 1, 0)] + "…"
    if value.isascii() and value.isprintable():
        return value  # the common case, without a regex pass
    return _UNSAFE.sub("\ufffd", _BREAKS.sub(" ", value))


def clean_tree(obj: Any, limit: int = 300) -> Any:
    """`clean_text` on every string of a JSON-like tree (a history record read back);
    non-finite floats become None."""
    if isinstance(obj, str):
        return clean_text(obj, limit)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {clean_text(str(k), limit): clean_tree(v, limit) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        return [clean_tree(v, limit) for v in obj]
    return obj


def _listed(obj: Any) -> list[Any]:
    """A sequence that is not a list (a packed one, read lazily) is encoded as the list it
    reads as; anything else is refused as json would."""
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def safe_json(obj: Any) -> bytes:
    """JSON that encodes whatever the data holds: ASCII escapes (a lone surrogate cannot break
    the encoder), and non-finite floats as null (JSON has no NaN)."""
    try:
        return json.dumps(
            obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_listed
        ).encode()
    except ValueError:
        return json.dumps(
            clean_tree(obj, limit=1 << 20), ensure_ascii=True, separators=(",", ":")
        ).encode()
