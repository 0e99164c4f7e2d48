"""Settings of one simulated model server."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from exporter.simulate.faults import FaultSpec

__all__ = ["DEFAULT_MODEL", "VLLM_VERSION", "SimulatorConfig"]

DEFAULT_MODEL = "Qwen/Qwen3-4B-Instruct-2507"
VLLM_VERSION = "0.11.0"


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything a simulator needs; `admin_port=None` turns the admin API off.

    `startup_seconds`: the port is bound but not listening (connection refused), as vLLM
    while it loads weights. `allow_exit`: the `crash` fault really exits the process (the
    CLI sets it; in-process simulators only abort connections and stop listening).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = DEFAULT_MODEL
    max_model_len: int = 262144
    version: str = VLLM_VERSION
    startup_seconds: float = 0.0
    ttft_seconds: float = 0.05
    token_interval_seconds: float = 0.01
    api_key: str | None = field(default=None, repr=False)
    admin_port: int | None = 0
    max_num_seqs: int = 256
    kv_cache_tokens: int = 16 * 8192
    seed: int = 0
    allow_exit: bool = False
    faults: tuple[FaultSpec, ...] = ()

    def __post_init__(self) -> None:
        for name in ("startup_seconds", "ttft_seconds", "token_interval_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        if self.admin_port is not None and not 0 <= self.admin_port <= 65535:
            raise ValueError(f"admin_port must be 0-65535, got {self.admin_port}")
        if self.max_num_seqs < 1:
            raise ValueError("max_num_seqs must be at least 1")
        if self.kv_cache_tokens < 1:
            raise ValueError("kv_cache_tokens must be at least 1")
        if not self.model:
            raise ValueError("model must not be empty")

    def fast(self) -> SimulatorConfig:
        """The same server with every delay at zero (benchmarks)."""
        return replace(self, startup_seconds=0.0, ttft_seconds=0.0, token_interval_seconds=0.0)
