"""Sample lines written ahead of a scrape: a writer that keeps a %-template of each family's
lines from one render to the next, and a family that serves text written that way (the
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


def _line(name: str, names: Sequence[str], values: Sequence[str]) -> str:
    """One line of a %-template: `name{labels} %s` (a `%` in a label value doubled)."""
    return f"{name}{_label_text(names, values).replace('%', '%%')} %s\n"


class LineWriter:
    """Writes one target's sample lines, all families at once, through one %-template kept
    while the target's series (their labels) stay the same, as told by a shape the caller
    gives (rows.series_shape): a re-render with an unchanged shape only fills the target's
    numbers in (rows.target_values) with a single `%`; no row is built, no label sorted or
    escaped again, and a target keeps one template string rather than a prefix per series."""

    __slots__ = ("_shape", "_template")

    def __init__(self) -> None:
        self._shape: tuple[Any, ...] | None = None
        self._template = ""

    def fits(self, shape: tuple[Any, ...]) -> bool:
        """Whether the template was written for series of this shape."""
        return self._shape is not None and shape == self._shape

    def fill(self, values: Sequence[str]) -> list[str] | None:
        """The text of each family with these numbers (formatted, in template order), or None
        when they do not fit the template (then `write` again)."""
        try:
            return (self._template % tuple(values)).split(_SEP)
        except TypeError:  # not as many numbers as the template has places
            self._shape = None
            return None

    def write(
        self,
        families: Sequence[tuple[str, Sequence[str], bool]],
        rows: Sequence[Sequence[Any]],
        shape: tuple[Any, ...] | None = None,
        values: Sequence[str] | None = None,
    ) -> list[str]:
        """The text of each family's rows, writing the template again. `families`: (line
        name, label names, histogram?); rows: (label values, value), or (label values,
        cumulative (le, count) pairs, sum) for histograms, as FastFamily and FastHistogram
        take them. The template is kept for `shape` only if `values` are the rows' numbers
        (else every render comes here: slower, never wrong)."""
        fmt = format_value
        numbers: list[str] = []
        for (_, _, histogram), family_rows in zip(families, rows, strict=True):
            if histogram:
                for _, buckets, total in family_rows:
                    numbers.extend([fmt(n) for _, n in buckets])
                    if _totals(buckets, total):
                        numbers.append(fmt(buckets[-1][1]))
                        numbers.append(fmt(total))
            else:
                numbers.extend([fmt(value) for _, value in family_rows])
        parts = _parts(families, rows)
        if any(_SEP in part for part in parts):  # in a label value: no template
            self._shape = None
            return _parts(families, rows, numbers)
        self._template = _SEP.join(parts)
        self._shape = shape if values is not None and list(values) == numbers else None
        return (self._template % tuple(numbers)).split(_SEP)


_SEP = "\x00"  # between families in a template (a label value with one: no template)


def _parts(
    families: Sequence[tuple[str, Sequence[str], bool]],
    rows: Sequence[Any],
    numbers: list[str] | None = None,
) -> list[str]:
    """Each family's lines with `%s` for each number, or, given the numbers, filled in."""
    parts: list[str] = []
    for (name, names, histogram), family_rows in zip(families, rows, strict=True):
        lines: list[str] = []
        if histogram:
            with_le = (*names, "le")
            for values, buckets, total in family_rows:
                lines.extend(_line(name + "_bucket", with_le, (*values, le)) for le, _ in buckets)
                if _totals(buckets, total):
                    lines.append(_line(name + "_count", names, values))
                    lines.append(_line(name + "_sum", names, values))
        else:
            lines.extend(_line(name, names, values) for values, _ in family_rows)
        parts.append("".join(lines))
    if numbers is None:
        return parts
    values = iter(numbers)  # label values never hold a raw newline (escaped)
    return ["".join(f"{line}\n" % next(values) for line in part.split("\n")[:-1]) for part in parts]


def _totals(buckets: Sequence[tuple[str, float]], total: float | None) -> bool:
    """Whether _count and _sum lines follow the buckets (prometheus_client's rule)."""
    return float(buckets[0][0]) >= 0 and total is not None


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

    @property
    def samples(self) -> list[Sample]:
        return self._build().samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise AttributeError("a TextFamily is written ahead")

    def lines(self, out: list[str]) -> None:
        out.extend(self.texts)
