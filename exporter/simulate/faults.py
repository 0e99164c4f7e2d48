"""Faults the simulator can be told to show, and the board that holds the active ones.

Pure logic, no I/O: the server asks the board "is X active now?" on every request, so
faults with a duration expire on their own without timers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["FAULT_KINDS", "FaultBoard", "FaultSpec"]

FAULT_KINDS: dict[str, str] = {
    "down": "stop listening: connections are refused (seconds = back up after N s)",
    "crash": "exit the process (in-process simulators abort connections and stop listening)",
    "hang": "accept connections and read requests, never answer",
    "health_lies": "/health answers 200, completions never finish",
    "slow": "add `seconds` before the first token and `token_seconds` per token",
    "error_rate": "answer a share `rate` of completions with 500/503 and vLLM's error JSON",
    "loading": "503 'Loading model' on every endpoint for `seconds` (llama.cpp/SGLang style)",
    "server_error": "500 with vLLM's error JSON on every endpoint, /health included",
    "garbage": "200 with a body that is neither JSON nor SSE",
    "wrong_answer": "answer `answer` (default 'London') instead of the right one",
    "stall": (
        "the engine core hangs (as a hung vLLM engine): streams under way stop after "
        "`after_tokens` deltas, new ones get their headers and nothing more, `running` requests "
        "stay stuck in the batch, token counters freeze; /health stays 200"
    ),
    "drip": "every response trickles out `chunk_bytes` bytes per `seconds`",
    "reset": "connection closed after `after_tokens` deltas, no [DONE]",
    "model_swap": "serve model id `model` instead of the configured one",
    "overloaded": "queue requests: `waiting` extra waiting, `seconds` queue time, still answers",
    "overload": (
        "a saturated engine: `waiting` queued, KV cache near full, generation advancing, "
        "answers after `seconds` (default 40 s: past a 30 s probe deadline)"
    ),
}

# Kinds that make every other fault irrelevant while active.
EXCLUSIVE = ("crash", "down", "hang", "loading")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault. Only the fields that matter for `kind` are read; see FAULT_KINDS."""

    kind: str
    seconds: float | None = None
    duration: float | None = None
    rate: float = 1.0
    status: int | None = None
    token_seconds: float = 0.0
    after_tokens: int = 1
    chunk_bytes: int = 1
    waiting: int = 32
    running: int = 4
    model: str | None = None
    answer: str | None = None
    exit_code: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            known = ", ".join(FAULT_KINDS)
            raise ValueError(f"unknown fault kind {self.kind!r}; known kinds: {known}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")
        for name in ("seconds", "duration"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.token_seconds < 0:
            raise ValueError(f"token_seconds must not be negative, got {self.token_seconds}")
        if self.status is not None and self.status not in (500, 503):
            raise ValueError(f"status must be 500 or 503, got {self.status}")
        if self.after_tokens < 0:
            raise ValueError(f"after_tokens must not be negative, got {self.after_tokens}")
        if self.chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be at least 1, got {self.chunk_bytes}")
        if self.waiting < 0:
            raise ValueError(f"waiting must not be negative, got {self.waiting}")
        if self.running < 0:
            raise ValueError(f"running must not be negative, got {self.running}")
        if self.kind == "overload" and self.seconds is None:
            object.__setattr__(self, "seconds", 40.0)
        if self.kind == "loading" and self.seconds is None and self.duration is None:
            object.__setattr__(self, "seconds", 30.0)

    @property
    def lifetime(self) -> float | None:
        """Seconds after which the fault clears itself (None: until cleared)."""
        if self.duration is not None:
            return self.duration
        if self.kind in ("loading", "down"):
            return self.seconds
        return None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSpec:
        """Build from JSON; unknown fields are an error, not silently ignored."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        if "kind" not in data:
            raise ValueError("a fault needs a 'kind'")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBoard:
    """Active faults, at most one per kind; `now` comes from the caller (monotonic seconds)."""

    def __init__(self) -> None:
        self._faults: dict[str, tuple[FaultSpec, float | None]] = {}

    def set(self, spec: FaultSpec, now: float) -> None:
        life = spec.lifetime
        self._faults[spec.kind] = (spec, None if life is None else now + life)

    def clear(self, kind: str | None = None) -> None:
        if kind is None:
            self._faults.clear()
        else:
            self._faults.pop(kind, None)

    def get(self, kind: str, now: float) -> FaultSpec | None:
        entry = self._faults.get(kind)
        if entry is None:
            return None
        spec, until = entry
        if until is not None and now >= until:
            del self._faults[kind]
            return None
        return spec

    def active(self, now: float) -> list[FaultSpec]:
        return [s for k in list(self._faults) if (s := self.get(k, now)) is not None]

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        out = []
        for spec in self.active(now):
            item = spec.to_dict()
            until = self._faults[spec.kind][1]
            item["remaining_seconds"] = None if until is None else round(until - now, 3)
            out.append(item)
        return out
