"""Durations in config files: plain seconds or Prometheus-style strings ("500ms", "15s", "5m", "1h30m")."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "parse_duration"]

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Return seconds for a number or a duration string; raise ValueError with a plain sentence."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '15s'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"invalid duration {value!r}: use seconds or units ms, s, m, h, d (e.g. '1m30s')"
                ) from None
    else:
        raise ValueError("a duration must be a number of seconds or a string like '15s'")
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"invalid duration {value!r}: must be a finite number >= 0")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
