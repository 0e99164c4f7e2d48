"""The one result shape every probe returns, and the closed sets of checks and failure reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["VERDICT_CHECKS", "Check", "EngineSample", "EngineUnit", "ProbeResult", "Reason"]


class Check(StrEnum):
    """A kind of probe; the `check` label value."""

    HEALTH = "health"
    MODELS = "models"
    CHAT = "chat"
    ENGINE = "engine"


# The checks whose one result says pass or fail about a target. The engine check reads the
# server's own /metrics: its conclusions (stalled, overloaded) need several samples, so it
# informs the state machine but never passes or fails a target by itself.
VERDICT_CHECKS: tuple[Check, ...] = (Check.HEALTH, Check.MODELS, Check.CHAT)


class Reason(StrEnum):
    """Why a probe failed; the `reason` label value. A closed set, so alerts can rely on it."""

    CONNECT_ERROR = "connect_error"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    LOADING = "loading"
    UNAUTHORIZED = "unauthorized"
    SERVER_ERROR = "server_error"
    INVALID_RESPONSE = "invalid_response"
    VALIDATION_FAILED = "validation_failed"
    MODEL_MISSING = "model_missing"
    BODY_TOO_LARGE = "body_too_large"
    STREAM_INCOMPLETE = "stream_incomplete"
    # the server has no such endpoint (404/405 on /health): not a failure, docs/servers.md
    NOT_OFFERED = "not_offered"
    # 429 (or Ollama's 503 "server busy"): busy or throttled, never broken
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class EngineUnit:
    """One engine of a server that runs several (vLLM's data-parallel `engine`, SGLang's
    `dp_rank`): each makes progress on its own, so each is judged on its own."""

    name: str
    running: float | None = None
    waiting: float | None = None
    progress: float | None = None
    asleep: bool = False
    """The server says this engine sleeps on purpose (vLLM's engine_sleep_state)."""
    deferred: float = 0.0
    """Of `waiting`, requests held back on purpose (vLLM: KV transfer, LoRA budget): work
    the engine cannot do yet, so no sign of a stall."""


@dataclass(frozen=True, slots=True)
class EngineSample:
    """One read of a server's own /metrics, in server-neutral terms (None: not exported).
    The figures are the server's totals; `engines` holds each engine's own when it has
    several (empty: one engine, the totals are its figures)."""

    flavour: str
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    # a counter that rises while the engine works (generated tokens, or decode steps)
    progress: float | None = None
    # a counter of generated tokens, for tokens/s (may be the same as `progress`)
    generated: float | None = None
    engines: tuple[EngineUnit, ...] = ()
    progress_name: str = ""
    """The server's name `progress` was read from (another name: another baseline)."""
    source: str = ""
    """Where the figures came from when not the metrics page (SGLang's /v1/loads)."""

    def units(self) -> tuple[EngineUnit, ...]:
        """Each engine's figures (the totals as one engine when the server runs one)."""
        if self.engines:
            return self.engines
        return (EngineUnit("", self.running, self.waiting, self.progress),)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe saw. Values only: the state machine and the metrics are views of it."""

    check: Check
    success: bool
    duration: float
    timestamp: float
    status_code: int | None = None
    reason: Reason | None = None
    detail: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    # chat probe
    ttft: float | None = None
    max_stall: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_second: float | None = None
    content: str | None = None
    finish_reason: str | None = None
    # models probe
    models: tuple[str, ...] = ()
    # engine probe
    engine: EngineSample | None = None
    # a rate limit's Retry-After, in seconds (rate_limited results)
    retry_after: float | None = None
    # what the probe learned the server is (probes/servers.py), if anything
    server: str | None = None
    # the exporter's own fault (util/faults.py FaultKind): nothing reached the target, so the
    # result says nothing about it; the monitor counts it as ours and never judges on it
    fault: str | None = None

    @property
    def answered(self) -> bool:
        """The server sent an HTTP response (it is alive, whatever it said)."""
        return self.status_code is not None

    @property
    def offered(self) -> bool:
        """False when the server said it has no such endpoint: neither a pass nor a failure."""
        return self.reason is not Reason.NOT_OFFERED

    @property
    def loading(self) -> bool:
        """The server said it is still starting (e.g. /health 503 while loading weights)."""
        return self.reason is Reason.LOADING
