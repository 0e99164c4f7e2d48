"""Sample lines written ahead of a scrape: a writer that keeps a template of each target's
lines from one render to the next, and a family that serves text written that way (the
collector caches it per target, exporter/metrics/collector.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from prometheus_client.samples import Sample

from exporter.metrics.exposition import FastFamily, escape, format_value

__all__ = ["NO_TEMPLATE", "LineWriter", "Template", "Templates", "TextFamily"]

# in a template: between families, a number's place (while it is written), where the target's
# name goes, where the labels of a line with other own labels go (a label value with one of
# them: no template, the writer checks what it wrote)
_SEP, _NUMBER, _NAME, _OWN = "\x00", "\x01", "\x02", "\x03"
_BSEP, _BNAME = _SEP.encode(), _NAME.encode()
# labels whose values belong to the target, not to its series: the template has a mark where
# they go, so targets whose series are alike share one template (rows.py: every family has
# `target`; llm_target_info also has the URL and the model)
_OWN_LABELS = frozenset({"target", "url", "model"})

Template = tuple[str, ...]  # the fixed text, with "" where each number goes
Templates = dict[Template, Template]  # templates kept by the collector, each once
NO_TEMPLATE: Template = ("",)  # fits no numbers


Line = tuple[str, str, str, str]  # series, its template, what _NAME and _OWN stand for


@lru_cache(maxsize=128)
def _plan(names: tuple[str, ...]) -> tuple[tuple[tuple[str, int], ...], int, int, bool]:
    """For label names: (name, index in the values) sorted by name, as prometheus_client
    writes labels; where `target`'s value is among the values and among the sorted labels
    (-1: none); whether there are other own labels (_OWN_LABELS)."""
    order = tuple(sorted((n, i) for i, n in enumerate(names)))
    at = [n for n, _ in order].index("target") if "target" in names else -1
    others = bool(_OWN_LABELS.intersection(names) - {"target"})
    return order, names.index("target") if at >= 0 else -1, at, others


def _labels(names: Sequence[str], values: Sequence[str]) -> Line:
    """`{a="1",b="2"}`, escaped, as prometheus_client writes labels; the same with the
    target's own label values marked (the `target` value by _NAME, all the labels of a line
    with other own labels, llm_target_info's, by _OWN); the escaped target name; what _OWN
    stands for."""
    if not names:
        return "", "", "", ""
    order, value_at, at, others = _plan(tuple(names))
    pairs = [f'{n}="{escape(values[i])}"' for n, i in order]
    text = "{" + ",".join(pairs) + "}"
    if others:
        return text, "{" + _OWN + "}", escape(values[value_at]) if at >= 0 else "", text[1:-1]
    if at < 0:
        return text, text, "", ""
    pairs[at] = f'target="{_NAME}"'
    return text, "{" + ",".join(pairs) + "}", escape(values[value_at]), ""


class LineWriter:
    """Writes one target's sample lines, all families at once, through a template kept while
    the target's series (their labels) stay the same, as told by a shape the caller gives
    (rows.series_shape): a re-render with an unchanged shape puts the numbers
    (rows.target_values) into the template's places with one slice assignment and joins, no
    row built, no label sorted or escaped again.

    The template holds no label value of the target's own (marks where its name goes, and
    llm_target_info's labels), so targets whose series are alike share it (`Templates`): at
    5,000 targets a template per target, ~107 str pieces, was 9 KiB of the 15 KiB a target
    cost (issue 16). What a target keeps is its name, put in with one bytes.replace after the
    join (~0.5 us a target; `%` formatting of a one-object template was slower: str % walks
    every character, bytes % needs the numbers as bytes), and the one piece with
    llm_target_info's labels in it (`_own`), put in its place before the join."""

    __slots__ = ("_name", "_own", "_own_at", "_shape", "_template")

    def __init__(self) -> None:
        self._shape: tuple[Any, ...] | None = None
        self._template = NO_TEMPLATE
        self._name = b""  # the escaped target name, encoded
        self._own, self._own_at = "", 0  # the template's piece with the _OWN labels, and where

    @property
    def template(self) -> Template:
        return self._template

    @property
    def shape(self) -> tuple[Any, ...] | None:
        return self._shape

    def fits(self, shape: tuple[Any, ...]) -> bool:
        """Whether the template was written for series of this shape."""
        return self._shape is not None and shape == self._shape

    def fill(self, values: Sequence[str]) -> list[bytes] | None:
        """The text of each family with these numbers (formatted, in template order), or None
        when they do not fit the template (then `write` again)."""
        parts = list(self._template)
        try:
            parts[1::2] = values
        except ValueError:  # not as many numbers as the template has places
            self._shape = None
            return None
        parts[self._own_at] = self._own
        return "".join(parts).encode("utf-8", "replace").replace(_BNAME, self._name).split(_BSEP)

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
            "".join([f"{line[0]} {next(it)}\n" for line in family]).encode("utf-8", "replace")
            for family in lines
        ]
        fixed = _SEP.join(
            ["".join([f"{line[1]} {_NUMBER}\n" for line in family]) for family in lines]
        )
        template: list[str] = []
        for piece in fixed.split(_NUMBER):
            template += (piece, "")
        self._template = tuple(template[:-1])
        name, own = (next((x for f in lines for line in f if (x := line[i])), "") for i in (2, 3))
        self._name = name.encode("utf-8", "replace")
        self._own_at = next((i for i, p in enumerate(template) if _OWN in p), 0)
        self._own = self._template[self._own_at].replace(_OWN, own)
        if self.fill(numbers) != texts:  # a label value with a mark in it, or another target
            self._shape, self._template, self._own, self._own_at = None, NO_TEMPLATE, "", 0
            return texts
        self._shape = shape if values is not None and list(values) == numbers else None
        if templates is not None:  # the equal one kept for another target, if any
            self._template = templates.setdefault(self._template, self._template)
            # from the kept one: without an _OWN mark, the same object as the template's
            self._own = self._template[self._own_at].replace(_OWN, own)
        return texts


def _line(series: str, names: Sequence[str], values: Sequence[str]) -> Line:
    text, template, name, own = _labels(names, values)
    return series + text, series + template, name, own


def _series(
    families: Sequence[tuple[str, Sequence[str], bool]], rows: Sequence[Any]
) -> list[list[Line]]:
    """Each family's series, one per number in the rows' order: `name{labels}`, its template
    and the target's own label values (`_labels`)."""
    out: list[list[Line]] = []
    for (name, names, histogram), family_rows in zip(families, rows, strict=True):
        series: list[Line] = []
        if histogram:
            with_le = (*names, "le")
            for values, buckets, total in family_rows:
                series += [_line(name + "_bucket", with_le, (*values, le)) for le, _ in buckets]
                if _totals(buckets, total):
                    series.append(_line(name + "_count", names, values))
                    series.append(_line(name + "_sum", names, values))
        else:
            series += [_line(name, names, values) for values, _ in family_rows]
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
