"""The engine check: read the server's own Prometheus /metrics to tell busy from broken."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from exporter.config.base import Strict
from exporter.config.durations import Duration

__all__ = ["EngineCheck", "EngineNames", "Flavour"]

Flavour = Literal["auto", "vllm", "sglang", "llamacpp", "tgi"]


class EngineNames(Strict):
    """Metric names for a server the built-in flavours do not know (or renamed ones).
    Each list is tried in order, the first name present wins; a non-empty list replaces the
    flavour's own. Counters may be given with or without `_total`."""

    running: list[str] = Field(default_factory=list)
    waiting: list[str] = Field(default_factory=list)
    kv_usage: list[str] = Field(default_factory=list)
    progress: list[str] = Field(default_factory=list)
    generated: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> EngineNames:
        for field in ("running", "waiting", "kv_usage", "progress", "generated"):
            for name in getattr(self, field):
                if not name or any(c.isspace() or c in '{}"#' for c in name):
                    raise ValueError(f"names.{field}: {name!r} is not a metric name")
        return self


class EngineCheck(Strict):
    """GET /metrics: queue, KV cache and generation progress from the server itself.

    `stall_after` 20 s: four samples at the 5 s default interval, far above one engine step
    (milliseconds per decode step; a chunked prefill step takes well under a second), and a
    stalled engine is then `degraded` within 5 + 20 = 25 s of the fault (goal 30 s). The
    saturation thresholds are the ones the Gateway API inference extension's endpoint picker
    uses to call a vLLM endpoint saturated: 5 waiting requests, KV cache 80 % used.
    """

    enabled: bool = True
    path: str = "/metrics"
    interval: Duration | None = Field(default=5.0, gt=0)
    timeout: Duration = Field(default=5.0, gt=0)
    max_bytes: int = Field(default=4 << 20, ge=1024, le=64 << 20)
    flavour: Flavour = "auto"
    names: EngineNames | None = None
    stall_after: Duration = Field(default=20.0, gt=0)
    queue_saturated: float = Field(default=5.0, ge=0)
    kv_saturated: float = Field(default=0.8, gt=0, le=1)
    # a chat probe slower than this (default: half its timeout) on a saturated engine
    # makes the target `overloaded`
    slow_chat: Duration | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> EngineCheck:
        if not self.path.startswith("/"):
            raise ValueError("checks.engine.path must start with '/'")
        return self
