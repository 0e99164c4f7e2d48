"""A minimal histogram value for custom collectors: bucket counts kept by us, exported on scrape."""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["DURATION_BUCKETS", "TTFT_BUCKETS", "Histogram"]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Histogram:
    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs ending with +Inf, as HistogramMetricFamily wants."""
        out: list[tuple[str, float]] = []
        running = 0
        for le, n in zip(self.buckets, self.counts, strict=False):
            running += n
            out.append((repr(le), running))
        out.append(("+Inf", self.count))
        return out
