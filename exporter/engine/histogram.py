"""A minimal histogram value for custom collectors: bucket counts kept by us, exported on scrape."""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

__all__ = [
    "COMPACT_CHAT_BUCKETS",
    "COMPACT_GET_BUCKETS",
    "COMPACT_TTFT_BUCKETS",
    "DURATION_BUCKETS",
    "TTFT_BUCKETS",
    "Histogram",
]

# `metrics.detail: full`
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# `metrics.detail: compact` (the default): three bounds per histogram, docs/metrics.md says where
# they come from. Each alert threshold (health/models p95 > 2 s, chat p95 > 10 s, TTFT p95 > 2 s)
# is a bound with one above it, so histogram_quantile crosses the threshold exactly when the
# share of observations above it does; the lowest bound sits above a healthy server's range.
COMPACT_GET_BUCKETS = (0.1, 2.0, 5.0)
COMPACT_CHAT_BUCKETS = (2.5, 10.0, 30.0)
COMPACT_TTFT_BUCKETS = (0.5, 2.0, 5.0)


_LE: dict[tuple[float, ...], tuple[str, ...]] = {}


def _le_labels(buckets: tuple[float, ...]) -> tuple[str, ...]:
    """The `le` label values of a bucket layout, made once (repr per scrape was the
    collector's biggest cost)."""
    labels = _LE.get(buckets)
    if labels is None:
        labels = _LE[buckets] = tuple(repr(le) for le in buckets)
    return labels


class Histogram:
    __slots__ = ("buckets", "count", "counts", "les", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.les = _le_labels(buckets)
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs ending with +Inf, as HistogramMetricFamily wants."""
        out: list[tuple[str, float]] = list(zip(self.les, accumulate(self.counts), strict=False))
        out.append(("+Inf", self.count))
        return out
