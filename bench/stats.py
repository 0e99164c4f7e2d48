"""Small pure helpers: percentiles and window filtering (no numpy needed)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["between", "percentile", "summary"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: Sequence[float], scale: float = 1.0) -> dict[str, float | int | None]:
    """p50, p99, max and count, each multiplied by `scale` (e.g. 1000 for ms)."""

    def scaled(v: float | None) -> float | None:
        return None if v is None else round(v * scale, 4)

    return {
        "p50": scaled(percentile(values, 50)),
        "p99": scaled(percentile(values, 99)),
        "max": scaled(max(values) if values else None),
        "n": len(values),
    }


def between(samples: Iterable[Sequence[float]], t0: float, t1: float) -> list[Sequence[float]]:
    """Samples whose first field (a timestamp) lies in [t0, t1)."""
    return [s for s in samples if t0 <= s[0] < t1]
