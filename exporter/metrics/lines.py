"""Sample lines written ahead of a scrape: a writer that keeps a template of each target's
lines from one render to the next, and a family that serves text written that way (the
collector caches it per target, exporter/metrics/collector.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client.samples import Sample

from exporter.metrics.exposition import FastFamily, escape, format_value

__all__ = ["LineWriter", "TextFamily"]

# between families in a template, and where a number goes while it is written (a label value
# with either: no template)
_SEP, _NUMBER = "\x00", "\x01"
_BSEP, _PLACE = _SEP.encode(), b"%b"  # _PLACE: where a number goes in the template


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    """`{a="1",b="2"}`, sorted by label name, escaped, as prometheus_client writes labels."""
    if not names:
        return ""
    pairs = sorted(zip(names, values, strict=True))
    return "{" + ",".join(f'{n}="{escape(v)}"' for n, v in pairs) + "}"


class LineWriter:
    """Writes one target's sample lines, all families at once, through a template kept while
    the target's series (their labels) stay the same, as told by a shape the caller gives
    (rows.series_shape). The template is the target's text, encoded, as ONE bytes object with
    a `%b` in place of each number (the fixed text %-escaped): a re-render with an unchanged
    shape is one `template % numbers` in C (rows.target_values); no row is built, no label
    sorted or escaped again. One object, not a list of the fixed pieces and the numbers
    (~107 str objects a target, 9 KiB of the 15 KiB each target cost at 5,000 targets); bytes,
    not str, because bytes % finds its places with memchr and str % walks every character
    (half the time, bench/render.py)."""

    __slots__ = ("_shape", "_template")

    def __init__(self) -> None:
        self._shape: tuple[Any, ...] | None = None
        self._template = b""

    def fits(self, shape: tuple[Any, ...]) -> bool:
        """Whether the template was written for series of this shape."""
        return self._shape is not None and shape == self._shape

    def fill(self, values: Sequence[str]) -> list[bytes] | None:
        """The text of each family with these numbers (formatted, in template order), or None
        when they do not fit the template (then `write` again)."""
        numbers = "\n".join(values).encode("ascii").split(b"\n") if values else []
        try:
            return (self._template % tuple(numbers)).split(_BSEP)
        except TypeError:  # not as many numbers as the template has places
            self._shape = None
            return None

    def write(
        self,
        families: Sequence[tuple[str, Sequence[str], bool]],
        rows: Sequence[Sequence[Any]],
        shape: tuple[Any, ...] | None = None,
        values: Sequence[str] | None = None,
    ) -> list[bytes]:
        """The text of each family's rows, encoded, writing the template again. `families`: (line
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
        names = _series(families, rows)
        if any(_SEP in name or _NUMBER in name for family in names for name in family):
            self._shape = None
            it = iter(numbers)
            texts = ["".join([f"{name} {next(it)}\n" for name in family]) for family in names]
            return [text.encode("utf-8", "replace") for text in texts]
        fixed = _SEP.join(["".join([f"{name} {_NUMBER}\n" for name in family]) for family in names])
        escaped = fixed.encode("utf-8", "replace").replace(b"%", b"%%")
        self._template = escaped.replace(_NUMBER.encode(), _PLACE)
        self._shape = shape if values is not None and list(values) == numbers else None
        texts = self.fill(numbers)
        assert texts is not None  # the template was just written for these numbers
        return texts


def _series(
    families: Sequence[tuple[str, Sequence[str], bool]], rows: Sequence[Any]
) -> list[list[str]]:
    """Each family's series, `name{labels}`, one per number in the rows' order."""
    out: list[list[str]] = []
    for (name, names, histogram), family_rows in zip(families, rows, strict=True):
        series: list[str] = []
        if histogram:
            with_le = (*names, "le")
            for values, buckets, total in family_rows:
                bucket = name + "_bucket"
                series += [bucket + _label_text(with_le, (*values, le)) for le, _ in buckets]
                if _totals(buckets, total):
                    labels = _label_text(names, values)
                    series += (f"{name}_count{labels}", f"{name}_sum{labels}")
        else:
            series += [name + _label_text(names, values) for values, _ in family_rows]
        out.append(series)
    return out


def _totals(buckets: Sequence[tuple[str, float]], total: float | None) -> bool:
    """Whether _count and _sum lines follow the buckets (prometheus_client's rule)."""
    return float(buckets[0][0]) >= 0 and total is not None


class TextFamily(FastFamily):
    """A family whose sample lines were written ahead, encoded (per target, cached by the
    collector); prometheus_client's encoders and `get_sample_value` get samples from `build`
    on demand."""

    def __init__(
        self,
        name: str,
        documentation: str,
        typ: str,
        texts: Sequence[bytes],
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

    def write(self, out: list[bytes]) -> None:
        out += self.texts

    def lines(self, out: list[str]) -> None:
        out.extend(text.decode() for text in self.texts)
