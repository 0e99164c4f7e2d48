"""The whole configuration: the YAML file's content plus `LLM_HEARTBEAT_*` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exporter.config.base import DEFAULT_MODEL_URL, Strict
from exporter.config.discovery import DiscoveryConfig
from exporter.config.durations import Duration
from exporter.config.maintenance import MaintenanceWindow
from exporter.config.metrics import MetricsConfig
from exporter.config.probe import ProbeEndpointConfig, ShardingConfig
from exporter.config.recovery import RecoveryConfig
from exporter.config.targets import TargetConfig

__all__ = ["ReloadConfig", "Settings"]


class ReloadConfig(Strict):
    """Who may POST /-/reload: loopback peers (by socket address) and, if a token is set,
    any client presenting it as a bearer token (a sidecar proxy makes every client loopback:
    set a token and `allow_loopback: false` behind one)."""

    token_file: Path | None = None
    token_env: str | None = None
    allow_loopback: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> ReloadConfig:
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("set either token_file or token_env, not both")
        return self


class Settings(BaseSettings):
    """The whole configuration. Environment variables (`LLM_HEARTBEAT_*`) override the file."""

    model_config = SettingsConfigDict(
        env_prefix="LLM_HEARTBEAT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    listen: str = "0.0.0.0:8001"
    default_interval: Duration = Field(default=15.0, gt=0)
    max_concurrency: int = Field(default=64, ge=1, le=10000)
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)
    history_file: Path | None = Path("llm-heartbeat-history.jsonl")
    history_keep: int = Field(default=50, ge=1, le=10000)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_file: Path | None = None
    # uvloop (libuv, in C) where installed: less CPU per probe and shorter turns of the loop,
    # so a probe's timing carries less of the exporter's own work (bench/, issue 16)
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    targets: list[TargetConfig] = Field(default_factory=list)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    probe: ProbeEndpointConfig = Field(default_factory=ProbeEndpointConfig)
    sharding: ShardingConfig = Field(default_factory=ShardingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    reload: ReloadConfig = Field(default_factory=ReloadConfig)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file's content arrives as init kwargs; the environment wins over it.
        return (env_settings, init_settings)

    @field_validator("history_file", mode="before")
    @classmethod
    def _no_history(cls, value: Any) -> Any:
        """An empty value (`history_file: ''`, an empty variable) turns the history off,
        never a file named "." (the current directory)."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("listen", mode="before")
    @classmethod
    def _listen_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"must be HOST:PORT, not a bare port: e.g. 0.0.0.0:{value}")
        return value

    @field_validator("listen")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        _host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:8001")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        seen: set[str] = set()
        for target in self.targets:
            if target.name in seen:
                raise ValueError(f"targets: name {target.name!r} is used twice")
            seen.add(target.name)
        return self

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def with_default_target(self) -> Settings:
        """With no targets configured, monitor vLLM's default address, as the seed does
        (unless targets come from discovery or /probe: the user said where they are)."""
        if self.targets or self.discovery.enabled or self.probe.modules:
            return self
        return self.model_copy(
            update={"targets": [TargetConfig(name="default", url=DEFAULT_MODEL_URL)]}
        )

    def interval_for(self, target: TargetConfig, check: str) -> float:
        spec = getattr(target.checks, check)
        return spec.interval or target.interval or self.default_interval
