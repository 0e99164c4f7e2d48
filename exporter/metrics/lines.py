"""Sample lines written ahead of a scrape: a writer that keeps each series' `name{labels} `
prefix from one render to the next, and a family that serves text written that way (the
collector caches it per target, exporter/metrics/collector.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client.samples import Sample

from exporter.metrics.exposition import FastFamily, escape, format_value

__all__ = ["LineWriter", "TextFamily"]


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    """`{a="1",b="2"}`, sorted by label name, escaped, as prometheus_client writes labels."""
    if not names:
        return ""
    pairs = sorted(zip(names, values, strict=True))
    return "{" + ",".join(f'{n}="{escape(v)}"' for n, v in pairs) + "}"


class LineWriter:
    """Writes sample lines keeping each series' `name{labels} ` prefix from one call to the
    next: a target's series keep their labels, so a re-render only formats numbers (and a
    line costs a dict lookup instead of sorting and escaping its labels)."""

    __slots__ = ("_bucket_prefixes", "_prefixes")

    def __init__(self) -> None:
        self._prefixes: dict[tuple[str, tuple[str, ...]], str] = {}
        self._bucket_prefixes: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}

    def _prefix(self, name: str, names: Sequence[str], values: tuple[str, ...]) -> str:
        key = (name, values)
        found = self._prefixes.get(key)
        if found is None:
            if len(self._prefixes) > 4096:  # labels that keep changing: start over
                self._prefixes.clear()
                self._bucket_prefixes.clear()
            found = self._prefixes[key] = f"{name}{_label_text(names, values)} "
        return found

    def rows(
        self, out: list[str], name: str, names: Sequence[str], rows: Sequence[tuple[Any, Any]]
    ) -> None:
        """(label values, value) rows of a gauge or counter (`name` with its suffix)."""
        prefixes, fmt = self._prefixes, format_value
        for values, value in rows:
            prefix = prefixes.get((name, values)) or self._prefix(name, names, values)
            out.append(f"{prefix}{fmt(value)}\n")

    def histogram(
        self,
        out: list[str],
        name: str,
        names: Sequence[str],
        rows: Sequence[tuple[Any, Sequence[tuple[str, float]], float]],
    ) -> None:
        """(label values, cumulative (le, count) pairs, sum) rows, as FastHistogram writes."""
        with_le = (*names, "le")
        bucket, count, total_name = name + "_bucket", name + "_count", name + "_sum"
        fmt = format_value
        for values, buckets, total in rows:
            les = tuple(le for le, _ in buckets)
            key = (bucket, (*values, *les))  # one lookup for all of a histogram's buckets
            found = self._bucket_prefixes.get(key)
            if found is None:
                found = tuple(self._prefix(bucket, with_le, (*values, le)) for le in les)
                self._bucket_prefixes[key] = found
            out.extend(
                [f"{prefix}{fmt(n)}\n" for prefix, (_, n) in zip(found, buckets, strict=True)]
            )
            if float(buckets[0][0]) >= 0 and total is not None:
                out.append(f"{self._prefix(count, names, values)}{fmt(buckets[-1][1])}\n")
                out.append(f"{self._prefix(total_name, names, values)}{fmt(total)}\n")


class TextFamily(FastFamily):
    """A family whose sample lines were written ahead (per target, cached by the collector);
    prometheus_client's encoders and `get_sample_value` get samples from `build` on demand."""

    def __init__(
        self,
        name: str,
        documentation: str,
        typ: str,
        texts: list[str],
        build: Callable[[], FastFamily],
    ) -> None:
        super().__init__(name, documentation, typ, ())
        self.texts = texts
        self._build = build

    @property  # type: ignore[override]
    def samples(self) -> list[Sample]:
        return self._build().samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise AttributeError("a TextFamily is written ahead")

    def lines(self, out: list[str]) -> None:
        out.extend(self.texts)
