"""vLLM's own Prometheus metrics, fed by the simulated traffic.

Names, types, help texts, labels (`model_name`, `engine`) and buckets follow
`vllm/v1/metrics/loggers.py` (PrometheusStatLogger, v0.11). Each simulator owns a
CollectorRegistry; nothing goes to prometheus_client's global registry. Gauges are read
from the engine state at scrape time, so they are always current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["EngineGauges", "RequestRecord", "VllmMetrics", "build_1_2_5_buckets"]

LABELS = ("model_name", "engine")
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
FINISH_REASONS = ("stop", "length", "abort")


def build_1_2_5_buckets(max_value: int) -> list[int]:
    """vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to max_value."""
    buckets: list[int] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return buckets
            buckets.append(value)
        exponent += 1


@dataclass(frozen=True, slots=True)
class EngineGauges:
    running: int
    waiting: int
    kv_cache_usage: float


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished request, as vLLM's FinishedRequestStats sees it."""

    finish_reason: str
    prompt_tokens: int
    generation_tokens: int
    max_tokens: int
    e2e_seconds: float
    queue_seconds: float
    prefill_seconds: float
    decode_seconds: float
    cached_tokens: int = 0


class _GaugeCollector(Collector):
    def __init__(self, read: Callable[[], tuple[str, EngineGauges]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        model, g = self._read()
        for name, doc, value in (
            ("vllm:num_requests_running", "Number of requests in model execution batches.",
             g.running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
             g.waiting),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
             g.kv_cache_usage),
        ):  # fmt: skip
            family = GaugeMetricFamily(name, doc, labels=LABELS)
            family.add_metric([model, "0"], float(value))
            yield family


class VllmMetrics:
    """The metric set of one simulated vLLM engine (engine index "0")."""

    def __init__(
        self,
        max_model_len: int,
        read_gauges: Callable[[], tuple[str, EngineGauges]],
        cache_info: dict[str, str] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        reg.register(_GaugeCollector(read_gauges))
        tok_buckets = build_1_2_5_buckets(max_model_len)

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labelnames=LABELS + extra, registry=reg)

        def histogram(name: str, doc: str, buckets: tuple[float, ...] | list[int]) -> Histogram:
            return Histogram(name, doc, labelnames=LABELS, buckets=buckets, registry=reg)

        self.preemptions = counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine."
        )
        self.prefix_queries = counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
        )
        self.prefix_hits = counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."
        )
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter(
            "vllm:generation_tokens", "Number of generation tokens processed."
        )
        self.request_success = counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            ("finished_reason",),
        )
        self.request_prompt_tokens = histogram(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", tok_buckets
        )
        self.request_generation_tokens = histogram(
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            tok_buckets,
        )
        self.iteration_tokens = histogram(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384),
        )
        self.max_generation_tokens = histogram(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            tok_buckets,
        )
        self.params_n = histogram(
            "vllm:request_params_n", "Histogram of the n request parameter.", (1, 2, 5, 10, 20)
        )
        self.params_max_tokens = histogram(
            "vllm:request_params_max_tokens",
            "Histogram of the max_tokens request parameter.",
            tok_buckets,
        )
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            TTFT_BUCKETS,
        )
        self.tpot = histogram(
            "vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds."
            "DEPRECATED: Use vllm:inter_token_latency_seconds instead.",
            ITL_BUCKETS,
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            ITL_BUCKETS,
        )
        self.request_tpot = histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            ITL_BUCKETS,
        )
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.queue = histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.inference = histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.prefill = histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.decode = histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        info = cache_info or {}
        if info:
            from prometheus_client import Gauge

            gauge = Gauge(
                "vllm:cache_config_info",
                "Information of the LLMEngine CacheConfig",
                labelnames=(*info.keys(), "engine"),
                registry=reg,
            )
            gauge.labels(*info.values(), "0").set(1)
        self._primed: set[str] = set()

    def prime(self, model: str) -> None:
        """Create every labelled series at zero, as vLLM does at start-up."""
        if model in self._primed:
            return
        self._primed.add(model)
        for metric in (
            self.preemptions, self.prefix_queries, self.prefix_hits, self.prompt_tokens,
            self.generation_tokens, self.request_prompt_tokens,
            self.request_generation_tokens, self.iteration_tokens, self.max_generation_tokens,
            self.params_n, self.params_max_tokens, self.ttft, self.tpot, self.itl,
            self.request_tpot, self.e2e, self.queue, self.inference, self.prefill, self.decode,
        ):  # fmt: skip
            metric.labels(model, "0")
        for reason in FINISH_REASONS:
            self.request_success.labels(model, "0", reason)

    def first_token(self, model: str, ttft: float, prompt_tokens: int) -> None:
        """The prefill step: vLLM v1 counts prompt and generation tokens per engine step
        (IterationStats), not when the request finishes."""
        self.prime(model)
        self.ttft.labels(model, "0").observe(ttft)
        self.iteration_tokens.labels(model, "0").observe(prompt_tokens + 1)
        self.prompt_tokens.labels(model, "0").inc(prompt_tokens)
        self.generation_tokens.labels(model, "0").inc(1)

    def next_token(self, model: str, interval: float) -> None:
        self.itl.labels(model, "0").observe(interval)
        self.tpot.labels(model, "0").observe(interval)
        self.generation_tokens.labels(model, "0").inc(1)

    def background_tokens(self, model: str, tokens: int) -> None:
        """Decode steps of the simulated other users' requests (the `overload` fault)."""
        self.prime(model)
        self.generation_tokens.labels(model, "0").inc(tokens)
        self.iteration_tokens.labels(model, "0").observe(max(1, tokens))

    def finished(self, model: str, rec: RequestRecord) -> None:
        """Per-request counters and histograms move when a request finishes, as vLLM records
        FinishedRequestStats (token counters moved step by step already)."""
        self.prime(model)
        lv = (model, "0")
        self.prefix_queries.labels(*lv).inc(rec.prompt_tokens)
        self.prefix_hits.labels(*lv).inc(rec.cached_tokens)
        self.request_success.labels(*lv, rec.finish_reason).inc()
        self.e2e.labels(*lv).observe(rec.e2e_seconds)
        self.queue.labels(*lv).observe(rec.queue_seconds)
        self.prefill.labels(*lv).observe(rec.prefill_seconds)
        self.decode.labels(*lv).observe(rec.decode_seconds)
        self.inference.labels(*lv).observe(rec.prefill_seconds + rec.decode_seconds)
        self.request_prompt_tokens.labels(*lv).observe(rec.prompt_tokens)
        self.request_generation_tokens.labels(*lv).observe(rec.generation_tokens)
        self.max_generation_tokens.labels(*lv).observe(rec.max_tokens)
        self.params_max_tokens.labels(*lv).observe(rec.max_tokens)
        self.params_n.labels(*lv).observe(1)
        if rec.generation_tokens > 1:
            self.request_tpot.labels(*lv).observe(rec.decode_seconds / (rec.generation_tokens - 1))

    def render(self) -> bytes:
        return generate_latest(self.registry)
