"""Sample lines written ahead of a scrape: a writer that keeps a template of each target's
lines from one render to the next, and a family that serves text written that way (the
collector caches it per target, exporter/metrics/collector.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client.samples import Sample

from exporter.metrics.exposition import FastFamily, escape, format_value

__all__ = ["LineWriter", "TextFamily"]

# in a template being written: between families, a number's place, the target's own labels'
# place (a label value with one of them: no template, the writer checks what it wrote)
_SEP, _NUMBER, _OWN = "\x00", "\x01", "\x02"
_BSEP, _PLACE = _SEP.encode(), b"%b"  # _PLACE: where a number or own labels go
# labels whose values belong to the target, not to its series: in the template they are
# places, so targets whose series are alike share one template (rows.py: every family has
# `target`; llm_target_info also has the URL and the model)
_OWN_LABELS = frozenset({"target", "url", "model"})

Templates = dict[bytes, bytes]  # templates kept by the collector, each once


def _labels(names: Sequence[str], values: Sequence[str]) -> tuple[str, str, str]:
    """`{a="1",b="2"}`, sorted by label name, escaped, as prometheus_client writes labels; the
    same with an _OWN place for the target's own labels; and what goes there (the `target`
    value, or all the labels of a line with other own labels: llm_target_info)."""
    if not names:
        return "", _OWN, ""
    pairs = [f'{n}="{escape(v)}"' for n, v in sorted(zip(names, values, strict=True))]
    text = "{" + ",".join(pairs) + "}"
    own = _OWN_LABELS.intersection(names)
    if own == {"target"}:
        at = sorted(names).index("target")
        value = escape(values[list(names).index("target")])
        pairs[at] = f'target="{_OWN}"'
        return text, "{" + ",".join(pairs) + "}", value
    if own:
        return text, "{" + _OWN + "}", text[1:-1]
    return text, _OWN + text, ""


class LineWriter:
    """Writes one target's sample lines, all families at once, through a template kept while
    the target's series (their labels) stay the same, as told by a shape the caller gives
    (rows.series_shape). The template is the target's text, encoded, as ONE bytes object with
    a `%b` place for each number and, on each line, one for the target's own labels (the
    fixed text %-escaped): a re-render with an unchanged shape is one `template % args` in C
    (rows.target_values), no row built, no label sorted or escaped again, and targets whose
    series are alike share one template (`Templates`).

    Issue 16: the template was a list of ~107 str pieces per target (9 KiB of the 15 KiB a
    target cost at 5,000 targets); bytes, not str, because bytes % finds its places with
    memchr where str % walks every character (twice as fast, bench/render.py)."""

    __slots__ = ("_name", "_others", "_shape", "_template")

    def __init__(self) -> None:
        self._shape: tuple[Any, ...] | None = None
        self._template = b""
        self._name = b""  # the target's own labels on most lines: the escaped target name
        self._others: tuple[tuple[int, bytes], ...] = ()  # (line, own labels) of the rest

    @property
    def template(self) -> bytes:
        return self._template

    def fits(self, shape: tuple[Any, ...]) -> bool:
        """Whether the template was written for series of this shape."""
        return self._shape is not None and shape == self._shape

    def fill(self, values: Sequence[str]) -> list[bytes] | None:
        """The text of each family with these numbers (formatted, in template order), or None
        when they do not fit the template (then `write` again)."""
        numbers = "\n".join(values).encode("ascii").split(b"\n") if values else []
        args = [self._name] * (2 * len(numbers))  # per line: own labels, then the number
        args[1::2] = numbers
        try:
            for line, own in self._others:
                args[2 * line] = own
            return (self._template % tuple(args)).split(_BSEP)
        except (TypeError, IndexError):  # not as many numbers as the template has places
            self._shape = None
            return None

    def write(
        self,
        families: Sequence[tuple[str, Sequence[str], bool]],
        rows: Sequence[Sequence[Any]],
        shape: tuple[Any, ...] | None = None,
        values: Sequence[str] | None = None,
        templates: Templates | None = None,
    ) -> list[bytes]:
        """The text of each family's rows, encoded, writing the template again. `families`: (line
        name, label names, histogram?); rows: (label values, value), or (label values,
        cumulative (le, count) pairs, sum) for histograms, as FastFamily and FastHistogram
        take them. The template is kept for `shape` only if `values` are the rows' numbers
        (else every render comes here: slower, never wrong), and taken from `templates` when
        an equal one is there (else put there)."""
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
        lines = _series(families, rows)
        it = iter(numbers)
        texts = [
            "".join([f"{text} {next(it)}\n" for text, _, _ in family]).encode("utf-8", "replace")
            for family in lines
        ]
        owns = [own for family in lines for _, _, own in family]
        name = max(set(owns), key=owns.count, default="")
        fixed = _SEP.join(["".join([f"{t} {_NUMBER}\n" for _, t, _ in family]) for family in lines])
        escaped = fixed.encode("utf-8", "replace").replace(b"%", b"%%")
        template = escaped.replace(_NUMBER.encode(), _PLACE).replace(_OWN.encode(), _PLACE)
        self._template, self._name = template, name.encode("utf-8", "replace")
        self._others = tuple(
            (i, own.encode("utf-8", "replace")) for i, own in enumerate(owns) if own != name
        )
        if self.fill(numbers) != texts:  # a label value with a _SEP, _NUMBER or _OWN in it
            self._shape, self._template, self._others = None, b"", ()
            return texts
        self._shape = shape if values is not None and list(values) == numbers else None
        if templates is not None:  # the equal one kept for another target, if any
            self._template = templates.setdefault(template, template)
        return texts


def _series(
    families: Sequence[tuple[str, Sequence[str], bool]], rows: Sequence[Any]
) -> list[list[tuple[str, str, str]]]:
    """Each family's series, one per number in the rows' order: `name{labels}`, the same
    with the own labels' place, and the own labels (`_labels`)."""
    out: list[list[tuple[str, str, str]]] = []
    for (name, names, histogram), family_rows in zip(families, rows, strict=True):
        series: list[tuple[str, str, str]] = []
        if histogram:
            with_le = (*names, "le")
            for values, buckets, total in family_rows:
                for le, _ in buckets:
                    text, template, own = _labels(with_le, (*values, le))
                    series.append((f"{name}_bucket{text}", f"{name}_bucket{template}", own))
                if _totals(buckets, total):
                    text, template, own = _labels(names, values)
                    series.append((f"{name}_count{text}", f"{name}_count{template}", own))
                    series.append((f"{name}_sum{text}", f"{name}_sum{template}", own))
        else:
            for values, _ in family_rows:
                text, template, own = _labels(names, values)
                series.append((name + text, name + template, own))
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
