"""/metrics without per-sample objects: metric families that keep compact rows and can write
their own exposition text, and `render`, which produces the very bytes prometheus_client's
encoder would (tests/core/test_exposition.py compares them) in a fraction of the time.

prometheus_client formats every sample through generic code (label sorting, escaping, a
Sample per line): about 12 us a line, 1.2 s for 1,000 targets (~100k lines), all of it
blocking the event loop. The families below are drop-in replacements for Gauge/Counter/
HistogramMetricFamily in a custom collector: their `samples` are built only when asked for,
so `generate_latest(registry)` and `registry.get_sample_value` work as before."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from prometheus_client import exposition as text_format
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as om
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = [
    "FastCounter",
    "FastFamily",
    "FastGauge",
    "FastHistogram",
    "escape",
    "fast_format",
    "format_value",
    "parts",
    "render",
]

_EOF = b"# EOF\n"
_EXPONENTS = tuple(f"e+{dot - 1:02d}" for dot in range(17))  # by where repr() has its dot


def format_value(value: float) -> str:
    """floatToGoString, with the common values done without it: floats within +-1e6 and counts
    (there it is repr() of the float), and Unix timestamps (Go's exponent form, which it writes
    as below for a positive float from 1e6 up to 1e16, where repr() has no exponent yet)."""
    cls = value.__class__
    if cls is float:
        if -1e6 < value < 1e6:  # what floatToGoString returns there (NaN fails the test)
            return repr(value)
        if 1e6 <= value < 1e16:
            s = repr(value)
            dot = s.find(".")
            return (s[0] + "." + s[1:dot] + s[dot + 1 :]).rstrip("0.") + _EXPONENTS[dot]
    elif cls is int and 0 <= value < 1_000_000:
        return f"{value}.0"
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


def escape(value: str) -> str:
    """A label value escaped as the text formats want it (backslash, quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


@lru_cache(maxsize=256)
def _template(
    labelnames: tuple[str, ...], extra: str | None
) -> tuple[tuple[int, ...], str, str, int]:
    """For labels in declared order (+ `extra`, e.g. "le"): the order to take the values in
    (sorted by label name, as prometheus_client writes them), the %-template before and after
    `extra`'s value (all of it in the first when there is no extra), and how many values go
    into the first."""
    names = [*labelnames, extra] if extra else list(labelnames)
    order = sorted(range(len(names)), key=lambda i: names[i])
    text = "{" + ",".join(f'{names[i]}="%s"' for i in order) + "}" if names else ""
    if extra is None:
        return tuple(order), text, "", len(order)
    marker = f'{extra}="%s"'
    cut = text.index(marker)
    before, after = text[:cut] + f'{extra}="', '"' + text[cut + len(marker) :]
    values_order = tuple(i for i in order if i < len(labelnames))
    return values_order, before, after, before.count("%s")


class FastFamily(Metric):
    """A family of one type whose rows are (label values, value); samples on demand."""

    suffix = ""

    def __init__(self, name: str, documentation: str, typ: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, typ)
        self._labelnames = tuple(labels)
        self.rows: list[tuple[Sequence[str], Any]] = []

    @property
    def samples(self) -> list[Sample]:
        name = self.name + self.suffix
        return [
            Sample(name, dict(zip(self._labelnames, lv, strict=True)), v) for lv, v in self.rows
        ]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:  # Metric.__init__ assigns []
        if value:
            raise AttributeError("rows are added with add_metric")

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.rows.append((labels, value))

    def write(self, out: list[bytes]) -> None:
        """Append the sample lines, encoded (the body is joined from bytes: no 4 MB encode)."""
        lines: list[str] = []
        self.lines(lines)
        out.append("".join(lines).encode("utf-8", "replace"))

    def lines(self, out: list[str]) -> None:
        """Append the sample lines, as prometheus_client would write them."""
        order, template, _, _ = _template(self._labelnames, None)
        name = self.name + self.suffix
        fmt, esc = format_value, escape
        if len(order) == 1:
            out.extend(f"{name}{template % esc(lv[0])} {fmt(v)}\n" for lv, v in self.rows)
        elif len(order) == 2:
            a, b = order
            out.extend(
                f"{name}{template % (esc(lv[a]), esc(lv[b]))} {fmt(v)}\n" for lv, v in self.rows
            )
        else:
            for lv, v in self.rows:
                labels = template % tuple(esc(lv[i]) for i in order)
                out.append(f"{name}{labels} {fmt(v)}\n")


class FastGauge(FastFamily):
    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, "gauge", labels)


class FastCounter(FastFamily):
    suffix = "_total"

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name.removesuffix("_total"), documentation, "counter", labels)


class FastHistogram(FastFamily):
    """Rows are (label values, [(le, cumulative count), ..., ("+Inf", count)], sum)."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, "histogram", labels)
        self.hist_rows: list[tuple[Sequence[str], Sequence[tuple[str, float]], float]] = []

    def add_metric(  # type: ignore[override]
        self, labels: Sequence[str], buckets: Sequence[tuple[str, float]], sum_value: float
    ) -> None:
        self.hist_rows.append((labels, buckets, sum_value))

    @property
    def samples(self) -> list[Sample]:
        out = []
        names = self._labelnames
        for lv, buckets, total in self.hist_rows:
            for le, count in buckets:
                labels = dict(zip(names, lv, strict=True))
                labels["le"] = le
                out.append(Sample(self.name + "_bucket", labels, count))
            if float(buckets[0][0]) >= 0 and total is not None:
                out.append(
                    Sample(self.name + "_count", dict(zip(names, lv, strict=True)), buckets[-1][1])
                )
                out.append(Sample(self.name + "_sum", dict(zip(names, lv, strict=True)), total))
        return out

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise AttributeError("rows are added with add_metric")

    def lines(self, out: list[str]) -> None:
        order, before, after, first = _template(self._labelnames, "le")
        plain_order, plain, _, _ = _template(self._labelnames, None)
        bucket, count, total_name = self.name + "_bucket", self.name + "_count", self.name + "_sum"
        fmt = format_value
        for lv, buckets, total in self.hist_rows:
            values = tuple(escape(lv[i]) for i in order)
            pre = bucket + before % values[:first]
            post = after % values[first:]
            for le, n in buckets:
                out.append(f"{pre}{le}{post} {fmt(n)}\n")
            if float(buckets[0][0]) >= 0 and total is not None:
                labels = plain % tuple(escape(lv[i]) for i in plain_order)
                out.append(f"{count}{labels} {fmt(buckets[-1][1])}\n")
                out.append(f"{total_name}{labels} {fmt(total)}\n")


class _One(Collector):
    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def collect(self) -> Iterator[Metric]:
        yield self.metric


@lru_cache(maxsize=512)
def _header(name: str, documentation: str, typ: str, openmetrics: bool, escaping: str) -> bytes:
    """HELP/TYPE lines exactly as prometheus_client writes them (it writes them here)."""
    one = _One(Metric(name, documentation, typ))
    if openmetrics:
        body: bytes = om.generate_latest(one, escaping=escaping)  # type: ignore[no-untyped-call]
        return body.removesuffix(_EOF)
    return text_format.generate_latest(one, escaping=escaping)


def fast_format(encoder: Any) -> tuple[bool, str] | None:
    """(openmetrics?, escaping) when the encoder writes what the fast path can, else None."""
    func = getattr(encoder, "func", encoder)
    keywords = getattr(encoder, "keywords", {})
    escaping = keywords.get("escaping", om.UNDERSCORES)
    if escaping not in (om.UNDERSCORES, om.ALLOWUTF8):  # names/labels are legacy-valid
        return None
    if func is om.generate_latest and keywords.get("version", "1.0.0") == "1.0.0":
        return True, escaping
    if func is text_format.generate_latest:
        return False, escaping
    return None


def parts(
    registry: Collector, encoder: Any, openmetrics: bool, escaping: str
) -> Iterator[list[bytes]]:
    """The text of each family in turn, encoded, fast families writing themselves."""
    for metric in registry.collect():
        out: list[bytes] = []
        if isinstance(metric, FastFamily):
            out.append(
                _header(metric.name, metric.documentation, metric.type, openmetrics, escaping)
            )
            metric.write(out)
        else:
            text: bytes = encoder(_One(metric))
            out.append(text.removesuffix(_EOF) if openmetrics else text)
        yield out
    if openmetrics:
        yield [_EOF]


def render(registry: Collector, accept: str = "") -> tuple[bytes, str]:
    """(body, content type) for an Accept header: the bytes prometheus_client's
    `choose_encoder(accept)` encoder makes, with fast families writing themselves."""
    encoder, content_type = choose_encoder(accept)
    fast = fast_format(encoder)
    if fast is None:  # another version or escaping: all of it to prometheus_client
        return encoder(registry), content_type
    out: list[bytes] = []
    for part in parts(registry, encoder, *fast):
        out += part
    return b"".join(out), content_type
