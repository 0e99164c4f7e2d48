"""Read a model server's own Prometheus text: which names each server uses, and a strict parse
of only those names into an EngineSample.

Names, types and labels are taken from each server's source:
- vLLM v1 (`vllm/v1/metrics/loggers.py`): gauges `vllm:num_requests_running`,
  `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc` (0-1; before v0.10
  `vllm:gpu_cache_usage_perc`), counter `vllm:generation_tokens_total`, incremented every
  engine step by the tokens it generated; labels `model_name`, `engine` (one series per
  data-parallel engine: summed here).
- SGLang (`python/sglang/srt/metrics/collector.py`): gauges `sglang:num_running_reqs`,
  `sglang:num_queue_reqs`, `sglang:token_usage` (0-1), counter
  `sglang:generation_tokens_total`; labels `model_name` and rank labels (summed).
- llama.cpp `llama-server --metrics` (`tools/server`): gauges `llamacpp:requests_processing`,
  `llamacpp:requests_deferred`, older builds `llamacpp:kv_cache_usage_ratio`; counters
  `llamacpp:tokens_predicted_total` (moves when a request finishes) and
  `llamacpp:n_decode_total` (every llama_decode() call: the progress signal).
- TGI (`router/src`, metrics-rs): gauges `tgi_queue_size`, `tgi_batch_current_size`, counter
  `tgi_batch_inference_success{method}` (every successful forward pass), histogram
  `tgi_request_generated_tokens` (its `_sum`: tokens of finished requests). No KV gauge.

Only lines of these names are parsed (with prometheus_client's parser): the rest of a
/metrics page is not ours to judge, and skipping it keeps the cost per read to a few lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from exporter.config.engine import EngineNames
from exporter.probes.results import EngineSample

__all__ = ["FLAVOURS", "EngineParseError", "Names", "names_for", "parse_engine"]

QUANTITIES = ("running", "waiting", "kv_usage", "progress", "generated")
MAX_LINES = 20_000  # lines of our names; a page with more is not a model server's


class EngineParseError(ValueError):
    """The body cannot be read as this server's metrics; the message says why."""


@dataclass(frozen=True, slots=True)
class Names:
    """Per quantity, the metric names to try in order (the first one present wins)."""

    flavour: str
    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    kv_usage: tuple[str, ...] = ()
    progress: tuple[str, ...] = ()
    generated: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return tuple(n for q in QUANTITIES for n in getattr(self, q))


FLAVOURS: dict[str, Names] = {
    "vllm": Names(
        "vllm",
        running=("vllm:num_requests_running",),
        waiting=("vllm:num_requests_waiting",),
        kv_usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        progress=("vllm:generation_tokens_total",),
        generated=("vllm:generation_tokens_total",),
    ),
    "sglang": Names(
        "sglang",
        running=("sglang:num_running_reqs",),
        waiting=("sglang:num_queue_reqs",),
        kv_usage=("sglang:token_usage",),
        progress=("sglang:generation_tokens_total",),
        generated=("sglang:generation_tokens_total",),
    ),
    "llamacpp": Names(
        "llamacpp",
        running=("llamacpp:requests_processing",),
        waiting=("llamacpp:requests_deferred",),
        kv_usage=("llamacpp:kv_cache_usage_ratio",),
        progress=("llamacpp:n_decode_total", "llamacpp:tokens_predicted_total"),
        generated=("llamacpp:tokens_predicted_total",),
    ),
    "tgi": Names(
        "tgi",
        running=("tgi_batch_current_size",),
        waiting=("tgi_queue_size",),
        progress=("tgi_batch_inference_success",),
        generated=("tgi_request_generated_tokens_sum",),
    ),
}


def names_for(flavour: str, override: EngineNames | None) -> list[Names]:
    """The name sets to try: one flavour, or all of them for `auto`; overrides replace."""
    base = list(FLAVOURS.values()) if flavour == "auto" else [FLAVOURS[flavour]]
    if override is None:
        return base
    custom = {q: tuple(getattr(override, q)) for q in QUANTITIES if getattr(override, q)}
    if flavour == "auto":
        return [Names("custom", **custom)]
    return [Names(flavour, **{q: custom.get(q, getattr(base[0], q)) for q in QUANTITIES})]


def _base(name: str) -> str:
    return name[: -len("_total")] if name.endswith("_total") else name


def _wanted_lines(body: bytes, bases: tuple[bytes, ...]) -> list[bytes]:
    """The lines (samples and their # TYPE/# HELP) that belong to one of `bases`."""
    kept: list[bytes] = []
    for raw in body.split(b"\n"):
        line = raw.strip()
        text = line[7:] if line.startswith((b"# TYPE ", b"# HELP ")) else line
        if not text.startswith(bases):
            continue
        if not any(
            text.startswith(b) and text[len(b) : len(b) + 1] in (b" ", b"\t", b"{", b"_")
            for b in bases
        ):
            continue  # a longer name that merely shares the prefix
        kept.append(line)
        if len(kept) > MAX_LINES:
            raise EngineParseError(f"more than {MAX_LINES} lines of engine metrics")
    return kept


def _samples(body: bytes, names: tuple[str, ...]) -> dict[str, list[tuple[str, float]]]:
    """{base name: [(sample description, value)]} for the wanted names, parsed strictly."""
    bases = {_base(n) for n in names}
    lines = _wanted_lines(body, tuple(sorted(b.encode() for b in bases)))
    try:
        text = b"\n".join(lines).decode("utf-8") + "\n"
    except UnicodeDecodeError:
        raise EngineParseError("engine metric lines are not valid UTF-8") from None
    found: dict[str, list[tuple[str, float]]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                base = _base(s.name)
                if base in bases:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    found.setdefault(base, []).append((f"{s.name}{{{labels}}}", s.value))
    except ValueError as exc:
        raise EngineParseError(f"not Prometheus text format: {str(exc)[:120]}") from None
    return found


def _value(quantity: str, name: str, samples: list[tuple[str, float]]) -> float:
    """Counts and counters are summed over label sets (engines, ranks); a ratio is the
    fullest engine's. NaN, Inf and negative numbers are refused: they mean nothing here."""
    for where, value in samples:
        if not math.isfinite(value) or value < 0:
            raise EngineParseError(f"{where} is {value}: not a usable {quantity} value")
    if quantity == "kv_usage":
        value = max(v for _, v in samples)
        if value > 1.0 + 1e-9:
            raise EngineParseError(f"{name} is {value:g}: not a ratio between 0 and 1")
        return value
    return math.fsum(v for _, v in samples)


def _read(names: Names, found: dict[str, list[tuple[str, float]]]) -> EngineSample:
    values: dict[str, float | None] = {}
    for q in QUANTITIES:
        values[q] = None
        for name in getattr(names, q):
            samples = found.get(_base(name))
            if samples:
                values[q] = _value(q, name, samples)
                break
    return EngineSample(flavour=names.flavour, **values)


def parse_engine(body: bytes, candidates: list[Names]) -> EngineSample:
    """The sample of the candidate name set that explains the most quantities. Raises
    EngineParseError when nothing usable is there (another server's page, HTML, garbage)."""
    names = tuple(dict.fromkeys(n for c in candidates for n in c.all()))
    found = _samples(body, names)
    best: EngineSample | None = None
    best_score = 0
    for cand in candidates:
        sample = _read(cand, found)
        score = sum(getattr(sample, q) is not None for q in QUANTITIES)
        if score > best_score:
            best, best_score = sample, score
    if best is None:
        flavours = ", ".join(c.flavour for c in candidates)
        raise EngineParseError(
            f"no engine metrics of {flavours} found (looked for {', '.join(names[:6])}"
            + (", ..." if len(names) > 6 else "")
            + ")"
        )
    if best.running is None and best.waiting is None:
        raise EngineParseError(f"{best.flavour}: neither running nor waiting requests exported")
    return best
