"""Prometheus durations ("1m30s", "72h4m") in seconds, for checking test timings."""

from __future__ import annotations

import re

__all__ = ["seconds"]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def seconds(text: str | int | float) -> float:
    if isinstance(text, int | float):
        return float(text)
    text = text.strip()
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return float(sum(int(n) * _UNITS[u] for n, u in parts))
