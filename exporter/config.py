"""Configuration: a YAML file plus `LLM_HEARTBEAT_*` environment variables, validated strictly.

Unknown keys are errors. `load_config` turns pydantic's errors into one `ConfigError` that names
the file, the field path and what is wrong, and never echoes a secret's value.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from exporter.durations import Duration
from exporter.recovery.config import RecoveryConfig

__all__ = [
    "DEFAULT_MODEL_URL",
    "DEFAULT_PROMPT",
    "ChatCheck",
    "Checks",
    "ConfigError",
    "DiscoveryConfig",
    "FileSDConfig",
    "HTTPSDConfig",
    "HealthCheck",
    "ModelsCheck",
    "ProbeEndpointConfig",
    "ProbeModule",
    "Settings",
    "ShardingConfig",
    "TargetConfig",
    "TargetTemplate",
    "Thresholds",
    "load_config",
    "redact_url",
]

DEFAULT_MODEL_URL = "http://localhost:8000"
DEFAULT_PROMPT = "Reply with exactly one word: the capital of France."
DEFAULT_EXPECT = "Paris"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthCheck(_Strict):
    """GET /health: 200 is healthy, 503 means loading."""

    enabled: bool = True
    path: str = "/health"
    interval: Duration | None = None
    timeout: Duration = Field(default=5.0, gt=0)


class ModelsCheck(_Strict):
    """GET /v1/models: the expected model must be listed."""

    enabled: bool = True
    path: str = "/v1/models"
    interval: Duration | None = None
    timeout: Duration = Field(default=10.0, gt=0)


class ChatCheck(_Strict):
    """POST /v1/chat/completions: real tokens are the only proof that inference works."""

    enabled: bool = True
    path: str = "/v1/chat/completions"
    interval: Duration | None = None
    timeout: Duration = Field(default=30.0, gt=0)
    prompt: str = Field(default=DEFAULT_PROMPT, min_length=1)
    system_prompt: str | None = None
    max_tokens: int = Field(default=8, ge=1, le=4096)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = 0
    stream: bool = True
    expect_contains: str | None = None
    expect_regex: str | None = None
    json_mode: bool = False

    @model_validator(mode="after")
    def _check(self) -> ChatCheck:
        if self.expect_regex is not None:
            try:
                re.compile(self.expect_regex)
            except re.error as exc:
                raise ValueError(f"expect_regex is not a valid regular expression: {exc}") from None
        if (
            self.prompt == DEFAULT_PROMPT
            and self.expect_contains is None
            and self.expect_regex is None
            and not self.json_mode
        ):
            object.__setattr__(self, "expect_contains", DEFAULT_EXPECT)
        return self


class Checks(_Strict):
    health: HealthCheck = HealthCheck()
    models: ModelsCheck = ModelsCheck()
    chat: ChatCheck = ChatCheck()


class Thresholds(_Strict):
    """When failures change the state; the seed's 3 strikes, confirmed fast by re-probing."""

    failures_to_down: int = Field(default=3, ge=1)
    successes_to_up: int = Field(default=1, ge=1)
    retry_interval: Duration = Field(default=1.0, gt=0)
    startup_grace: Duration = Field(default=600.0, ge=0)
    latency_warning: Duration | None = None


class TargetTemplate(_Strict):
    """Everything about a target but its name and URL (what discovered targets share)."""

    model: str | None = None
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    interval: Duration | None = None
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    checks: Checks = Checks()
    thresholds: Thresholds = Thresholds()


class TargetConfig(TargetTemplate):
    """One monitored model server."""

    name: str
    url: str

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        if not _NAME.match(self.name):
            raise ValueError(
                f"name {self.name!r} must be 1-128 characters of letters, digits, '_', '.', ':' or '-'"
            )
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("url must not have a query or fragment: give the server's base URL")
        object.__setattr__(self, "url", self.url.rstrip("/"))
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("set api_key or api_key_file, not both")
        for key, value in self.headers.items():
            if not _HEADER_NAME.match(key) or "\n" in value or "\r" in value:
                raise ValueError(f"headers: {key!r} is not a valid HTTP header")
        if not any(c.enabled for c in (self.checks.health, self.checks.models, self.checks.chat)):
            raise ValueError("checks: at least one check must be enabled")
        return self

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

    def resolve_api_key(self) -> str | None:
        """The API key, from the config or its file (read each time, so rotation works)."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_file is not None:
            return self.api_key_file.read_text(encoding="utf-8").strip()
        return None


def redact_url(url: str) -> str:
    """The URL without user:password, safe for labels and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# ---- scale-out: /probe modules, target discovery, sharding (docs/scaling.md) ----------------
class FileSDConfig(_Strict):
    """Prometheus file-SD files (JSON or YAML), polled for changes by modification time."""

    name: str | None = None
    files: list[str] = Field(min_length=1)
    refresh_interval: Duration = Field(default=300.0, gt=0)
    watch_interval: Duration = Field(default=5.0, gt=0)
    template: TargetTemplate = TargetTemplate()


class HTTPSDConfig(_Strict):
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
        for key, value in self.headers.items():
            if not _HEADER_NAME.match(key) or "\n" in value or "\r" in value:
                raise ValueError(f"headers: {key!r} is not a valid HTTP header")
        return self


class DiscoveryConfig(_Strict):
    """Targets besides the static list; unnamed sources are called file_sd_N / http_sd_N."""

    file_sd: list[FileSDConfig] = Field(default_factory=list)
    http_sd: list[HTTPSDConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> DiscoveryConfig:
        for kind, sources in (("file_sd", self.file_sd), ("http_sd", self.http_sd)):
            for i, source in enumerate(sources):
                if source.name is None:
                    object.__setattr__(source, "name", f"{kind}_{i}")
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1 and n is not None})
        if dupes:
            raise ValueError(f"discovery source names must be unique: {', '.join(dupes)}")
        for name in names:
            if name is None or not _NAME.match(name):
                raise ValueError(f"discovery source name {name!r} is not a valid name")
        return self

    @property
    def sources(self) -> list[FileSDConfig | HTTPSDConfig]:
        return [*self.file_sd, *self.http_sd]

    @property
    def enabled(self) -> bool:
        return bool(self.file_sd or self.http_sd)


class ProbeModule(_Strict):
    """A named check module for `GET /probe?target=...&module=NAME` (blackbox style)."""

    model: str | None = None
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    checks: Checks = Checks()
    timeout: Duration = Field(default=30.0, gt=0)
    scheme: Literal["http", "https"] = "http"


class ProbeEndpointConfig(_Strict):
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
            if not _NAME.match(name):
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


class ShardingConfig(_Strict):
    """This replica probes the targets whose name hashes to `index` modulo `count`."""

    index: int = Field(default=0, ge=0)
    count: int = Field(default=1, ge=1, le=100000)

    @model_validator(mode="after")
    def _check(self) -> ShardingConfig:
        if self.index >= self.count:
            raise ValueError(f"index {self.index} must be below count {self.count}")
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
    targets: list[TargetConfig] = Field(default_factory=list)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    probe: ProbeEndpointConfig = Field(default_factory=ProbeEndpointConfig)
    sharding: ShardingConfig = Field(default_factory=ShardingConfig)

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

    @model_validator(mode="after")
    def _check(self) -> Settings:
        _host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("listen must be HOST:PORT, e.g. 0.0.0.0:8001")
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

    def target(self, name: str) -> TargetConfig | None:
        return next((t for t in self.targets if t.name == name), None)

    def interval_for(self, target: TargetConfig, check: str) -> float:
        spec = getattr(target.checks, check)
        return spec.interval or target.interval or self.default_interval


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file and the field."""


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors(include_url=False, include_input=False):
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a setting; check the spelling)"
        lines.append(f"  {_loc(tuple(err['loc']))}: {msg}")
    return "\n".join(lines)


def read_yaml(path: Path) -> dict[str, Any]:
    """The file's top-level mapping, or a ConfigError naming the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"invalid YAML in {path}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {path}: the top level must be a mapping")
    return data


def load_config(path: Path | str | None = None) -> Settings:
    """Load the YAML file (if any) and the environment; raise ConfigError on any problem."""
    if path is None and os.environ.get("LLM_HEARTBEAT_CONFIG"):
        path = os.environ["LLM_HEARTBEAT_CONFIG"]
    data: dict[str, Any] = {}
    source = "the environment (LLM_HEARTBEAT_*)"
    if path is not None:
        path = Path(path)
        data = read_yaml(path)
        source = f"{path} (or LLM_HEARTBEAT_* environment variables)"
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
