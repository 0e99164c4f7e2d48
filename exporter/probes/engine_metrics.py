"""Read a model server's own Prometheus text cheaply and strictly: only the lines of the
names the server modules use (exporter/probes/engines/) are kept, chunk by chunk as the page
arrives, and only those are parsed.

Why chunk by chunk with `bytes.find`: a page is not ours to judge, and a hostile one (a valid
page followed by MiBs of blank lines, one endless line) must not cost the event loop more than
a few milliseconds at a time. The search for a handful of names runs in C over each chunk; a
line longer than `MAX_LINE` that is not ours is skipped without being kept; more than
`MAX_LINES` lines of our names is not a model server's page. The kept lines are parsed with
prometheus_client's parser; a duplicated series and absurd values (NaN, infinities, 1e308
waiting requests) make the page invalid, with a detail that says which series and why.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families

from exporter.errors import EngineParseError
from exporter.probes.engines import Engine, Found, base_name, read_sample
from exporter.probes.results import EngineSample

__all__ = ["MAX_LINES", "EngineParseError", "LineFilter", "parse_found", "pick_sample"]

MAX_LINES = 2_000
"""Lines of our names on one page; more is not a model server's page (8 data-parallel
engines with 10 priorities write a few hundred)."""
MAX_LINE = 64 << 10
SUFFIXES = (b"_total", b"_created", b"_sum", b"_count", b"_bucket")


class LineFilter:
    """Keeps the sample lines of a set of metric names from a page fed in chunks."""

    def __init__(self, names: Iterable[str]) -> None:
        self.bases = tuple(sorted({base_name(n).encode() for n in names}))
        self.lines: list[bytes] = []
        self.prometheus = False
        """The page has a `# TYPE` line: Prometheus text, whatever else it holds."""
        self._carry = b""
        self._skipping = False

    def feed(self, chunk: bytes) -> None:
        if self._skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                return
            chunk, self._skipping = chunk[nl + 1 :], False
        data = self._carry + chunk if self._carry else chunk
        end = data.rfind(b"\n") + 1
        if end:
            self._scan(data, end)
            data = data[end:]
        self._carry = data
        if len(data) > MAX_LINE:
            if data.startswith(self.bases):
                raise EngineParseError(f"a line of engine metrics longer than {MAX_LINE} bytes")
            self._carry, self._skipping = b"", True  # not ours: skip to its end

    def finish(self) -> list[bytes]:
        if self._carry:
            self._scan(self._carry + b"\n", len(self._carry) + 1)
            self._carry = b""
        return self.lines

    def _scan(self, data: bytes, end: int) -> None:
        if not self.prometheus and (
            data.startswith(b"# TYPE ") or data.find(b"\n# TYPE ", 0, end) >= 0
        ):
            self.prometheus = True
        found: dict[int, bytes] = {}
        for base in self.bases:
            pos = data.find(base, 0, end)
            while pos >= 0:
                after = pos + len(base)
                nxt = data[after : after + 1]
                if (pos == 0 or data[pos - 1] == 10) and (
                    nxt in (b" ", b"\t", b"{") or data.startswith(SUFFIXES, after)
                ):
                    stop = data.find(b"\n", after, end)
                    found[pos] = data[pos:stop].rstrip(b"\r")
                pos = data.find(base, after, end)
        if found:
            self.lines.extend(found[p] for p in sorted(found))
            if len(self.lines) > MAX_LINES:
                raise EngineParseError(f"more than {MAX_LINES} lines of engine metrics")


def parse_found(lines: list[bytes], names: Iterable[str]) -> Found:
    """{base name: [(labels, value)]} of the wanted names; a series twice is refused."""
    bases = {base_name(n) for n in names}
    try:
        text = b"\n".join(lines).decode("utf-8") + "\n"
    except UnicodeDecodeError:
        raise EngineParseError("engine metric lines are not valid UTF-8") from None
    found: Found = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                base = base_name(s.name)
                if base not in bases:
                    continue
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in seen:
                    labels = ",".join(f'{k}="{v}"' for k, v in key[1])
                    raise EngineParseError(
                        f"series {s.name}{{{labels}}} appears twice: not one server's page"
                    )
                seen.add(key)
                found.setdefault(base, []).append((s.labels, s.value))
    except (ValueError, IndexError, OverflowError) as exc:
        raise EngineParseError(f"not Prometheus text format: {str(exc)[:120]}") from None
    return found


def pick_sample(found: Found, engines: list[Engine]) -> EngineSample:
    """The sample of the engine whose names explain the most quantities. Raises
    EngineParseError when nothing usable is there (another server's page, HTML, garbage)."""
    best: EngineSample | None = None
    best_score = 0
    for engine in engines:
        sample, score = read_sample(engine, found)
        if score > best_score:
            best, best_score = sample, score
    if best is None:
        names = tuple(dict.fromkeys(n for e in engines for n in e.names.all()))
        flavours = ", ".join(e.names.flavour for e in engines)
        raise EngineParseError(
            f"no engine metrics of {flavours} found (looked for {', '.join(names[:6])}"
            + (", ..." if len(names) > 6 else "")
            + ")"
        )
    if best.running is None and best.waiting is None:
        raise EngineParseError(f"{best.flavour}: neither running nor waiting requests exported")
    return best
