"""`/probe` modules and allow-list, and sharding: the scale-out settings (docs/scaling.md)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from exporter.config.base import NAME, Strict
from exporter.config.durations import Duration
from exporter.config.network import Network
from exporter.config.targets import Checks, ServerKind

__all__ = ["ProbeEndpointConfig", "ProbeModule", "ShardingConfig"]


class ProbeModule(Network):
    """A named check module for `GET /probe?target=...&module=NAME` (blackbox style); `tls`,
    `proxy_url` and `proxy_from_environment` as a target's (config/network.py)."""

    model: str | None = None
    server: ServerKind = "auto"  # docs/servers.md
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    checks: Checks = Checks()
    timeout: Duration = Field(default=30.0, gt=0)
    scheme: Literal["http", "https"] = "http"


class ProbeEndpointConfig(Strict):
    """`/probe`: modules, and the allow-list that keeps it from being an open proxy."""

    modules: dict[str, ProbeModule] = Field(default_factory=dict)
    allowed_targets: list[str] = Field(default_factory=list)
    timeout_offset: Duration = Field(default=0.5, ge=0)
    # its own connection pool and budget: nothing /probe does can delay a scheduled probe
    max_concurrency: int = Field(default=16, ge=1, le=1024)
    # optional bearer token (from a file or an environment variable) that /probe requires
    token_file: Path | None = None
    token_env: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ProbeEndpointConfig:
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("set either token_file or token_env, not both")
        for name in self.modules:
            if not NAME.match(name):
                raise ValueError(f"modules: {name!r} is not a valid module name")
        for pattern in self.allowed_targets:
            if not pattern.strip() or ("/" in pattern and not _is_cidr(pattern)):
                raise ValueError(
                    f"allowed_targets: {pattern!r} must be a host[:port] pattern or a CIDR"
                )
        return self


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


class ShardingConfig(Strict):
    """This replica probes the targets whose name hashes to `index` modulo `count`."""

    index: int = Field(default=0, ge=0)
    count: int = Field(default=1, ge=1, le=100000)

    @model_validator(mode="after")
    def _check(self) -> ShardingConfig:
        if self.index >= self.count:
            raise ValueError(f"index {self.index} must be below count {self.count}")
        return self
