"""Target discovery sources: Prometheus file-SD and HTTP-SD (docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from exporter.config.base import HEADER_NAME, NAME, Strict, check_authority
from exporter.config.durations import Duration
from exporter.config.targets import TargetTemplate

__all__ = ["DiscoveryConfig", "FileSDConfig", "HTTPSDConfig"]


class FileSDConfig(Strict):
    """Prometheus file-SD files (JSON or YAML), polled for changes by modification time."""

    name: str | None = None
    files: list[str] = Field(min_length=1)
    refresh_interval: Duration = Field(default=300.0, gt=0)
    watch_interval: Duration = Field(default=5.0, gt=0)
    template: TargetTemplate = TargetTemplate()


class HTTPSDConfig(Strict):
    """A Prometheus HTTP-SD endpoint: GET returns a JSON list of target groups."""

    name: str | None = None
    url: str
    refresh_interval: Duration = Field(default=60.0, gt=0)
    timeout: Duration = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=4 << 20, ge=1024, le=256 << 20)
    headers: dict[str, str] = Field(default_factory=dict)
    bearer_token_file: Path | None = None
    template: TargetTemplate = TargetTemplate()

    @model_validator(mode="after")
    def _check(self) -> HTTPSDConfig:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http:// or https:// URL")
        check_authority(parts)
        for key, value in self.headers.items():
            if not HEADER_NAME.match(key) or "\n" in value or "\r" in value:
                raise ValueError(f"headers: {key!r} is not a valid HTTP header")
        return self


class DiscoveryConfig(Strict):
    """Targets besides the static list; unnamed sources are called file_sd_N / http_sd_N."""

    file_sd: list[FileSDConfig] = Field(default_factory=list)
    http_sd: list[HTTPSDConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> DiscoveryConfig:
        groups: tuple[tuple[str, Sequence[FileSDConfig | HTTPSDConfig]], ...] = (
            ("file_sd", self.file_sd),
            ("http_sd", self.http_sd),
        )
        for kind, sources in groups:
            for i, source in enumerate(sources):
                if source.name is None:
                    object.__setattr__(source, "name", f"{kind}_{i}")
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1 and n is not None})
        if dupes:
            raise ValueError(f"discovery source names must be unique: {', '.join(dupes)}")
        for name in names:
            if name is None or not NAME.match(name):
                raise ValueError(f"discovery source name {name!r} is not a valid name")
        return self

    @property
    def sources(self) -> list[FileSDConfig | HTTPSDConfig]:
        return [*self.file_sd, *self.http_sd]

    @property
    def enabled(self) -> bool:
        return bool(self.file_sd or self.http_sd)
