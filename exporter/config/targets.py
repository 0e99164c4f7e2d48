"""A target: the four checks, the thresholds, and the target itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from exporter.config.base import (
    DEFAULT_EXPECT,
    DEFAULT_PROMPT,
    HEADER_NAME,
    NAME,
    Strict,
    check_authority,
    redact_url,
)
from exporter.config.durations import Duration
from exporter.config.engine import EngineCheck
from exporter.config.network import Network
from exporter.util.secrets import read_rotating

__all__ = [
    "ChatCheck",
    "Checks",
    "HealthCheck",
    "ModelsCheck",
    "ServerKind",
    "TargetConfig",
    "TargetTemplate",
    "Thresholds",
    "targets_from_flags",
]


# What a target is (probes/servers.py has one profile each, docs/servers.md the table):
# `auto` finds it out; the names are the engine flavours' (checks.engine.flavour) plus three.
ServerKind = Literal["auto", "vllm", "sglang", "tgi", "llamacpp", "ollama", "litellm", "openai"]


class HealthCheck(Strict):
    """GET /health: 200 is healthy, 503 means loading."""

    enabled: bool = True
    path: str = "/health"
    interval: Duration | None = None
    timeout: Duration = Field(default=5.0, gt=0)


class ModelsCheck(Strict):
    """GET /v1/models: the expected model must be listed, and every name in `require` too
    (LoRA adapters: vLLM lists each loaded adapter in /v1/models beside its base model)."""

    enabled: bool = True
    path: str = "/v1/models"
    interval: Duration | None = None
    timeout: Duration = Field(default=10.0, gt=0)
    require: tuple[str, ...] = Field(default=(), max_length=100)

    @field_validator("require")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name.strip() or len(name) > 500:
                raise ValueError(f"checks.models.require: {name[:40]!r} is not a model name")
        return value


class ChatCheck(Strict):
    """POST /v1/chat/completions: real tokens are the only proof that inference works."""

    enabled: bool = True
    path: str = "/v1/chat/completions"
    interval: Duration | None = None
    timeout: Duration = Field(default=30.0, gt=0)
    # a streamed answer's first token within ttft_timeout, then no gap between chunks longer
    # than chunk_timeout: a hung engine is seen in seconds, not after the whole `timeout`
    ttft_timeout: Duration | None = Field(default=8.0, gt=0)
    chunk_timeout: Duration | None = Field(default=10.0, gt=0)
    prompt: str = Field(default=DEFAULT_PROMPT, min_length=1)
    system_prompt: str | None = None
    max_tokens: int = Field(default=8, ge=1, le=4096)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    seed: int | None = 0
    stream: bool = True
    expect_contains: str | None = None
    expect_regex: str | None = None
    json_mode: bool = False
    # the OpenAI `user` field: names the request as the exporter's (gateways route or drop
    # it by this, docs/probe-cost.md); null leaves the field out
    user: str | None = Field(default="llm-heartbeat", min_length=1, max_length=256)
    # real traffic is the heartbeat (engine/thrift.py): while the engine view shows
    # generation advancing with requests running, the chat waits up to `max_skip`
    skip_when_busy: bool = True
    max_skip: Duration = Field(default=600.0, ge=0)

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


class Checks(Strict):
    health: HealthCheck = HealthCheck()
    models: ModelsCheck = ModelsCheck()
    chat: ChatCheck = ChatCheck()
    engine: EngineCheck = EngineCheck()


class Thresholds(Strict):
    """When failures change the state; the seed's 3 strikes, confirmed fast by re-probing."""

    failures_to_down: int = Field(default=3, ge=1)
    successes_to_up: int = Field(default=1, ge=1)
    retry_interval: Duration = Field(default=1.0, gt=0)
    startup_grace: Duration = Field(default=600.0, ge=0)


class TargetTemplate(Network):
    """Everything about a target but its name and URL (what discovered targets share); the
    way there (tls, proxy_url, proxy_from_environment) in config/network.py."""

    model: str | None = None
    server: ServerKind = "auto"
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    interval: Duration | None = None
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=64 << 20)
    checks: Checks = Checks()
    thresholds: Thresholds = Thresholds()


M = TypeVar("M")
_SHARED: dict[Any, Any] = {}
_SHARED_MAX = 4096


def _shared(value: M) -> M:
    """One instance of each distinct value (frozen models): 5,000 targets with the same checks
    keep one set of them, not 5,000 (~1 KiB each, issue 16)."""
    try:
        found = _SHARED.get(value)
    except TypeError:  # a field that cannot be hashed: kept as it is
        return value
    if found is not None:
        return cast(M, found)
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()
    _SHARED[value] = value
    return value


class TargetConfig(TargetTemplate):
    """One monitored model server."""

    name: str
    url: str

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        if not NAME.match(self.name):
            raise ValueError(
                f"name {self.name!r} must be 1-128 characters of letters, digits, '_', '.', ':' or '-'"
            )
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http:// or https:// URL with a host")
        check_authority(parts)
        if parts.query or parts.fragment:
            raise ValueError("url must not have a query or fragment: give the server's base URL")
        object.__setattr__(self, "url", self.url.rstrip("/"))
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("set api_key or api_key_file, not both")
        for key, value in self.headers.items():
            if not HEADER_NAME.match(key) or "\n" in value or "\r" in value:
                raise ValueError(f"headers: {key!r} is not a valid HTTP header")
        if not any(c.enabled for c in (self.checks.health, self.checks.models, self.checks.chat)):
            raise ValueError("checks: at least one check must be enabled")
        if self.server == "openai" and not self.checks.chat.enabled:
            raise ValueError(
                "server: openai has no health endpoint and no metrics page, so only "
                "checks.chat can prove that inference works: enable it"
            )
        object.__setattr__(self, "checks", _shared(self.checks))
        object.__setattr__(self, "thresholds", _shared(self.thresholds))
        return self

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

    def resolve_api_key(self) -> str | None:
        """The API key, from the config or its file (read again every few seconds, so
        rotation works without a file read per probe). A file gone or empty keeps the last
        key read; one never read raises SecretUnavailable: the exporter's fault, no probe."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_file is not None:
            return read_rotating(self.api_key_file, f"target {self.name}: api_key_file")
        return None


def targets_from_flags(specs: list[str], model: str | None = None) -> list[TargetConfig]:
    """Targets from `run --target [NAME=]URL` flags: the quick start without a YAML file.

    Unnamed targets are named after their HOST:PORT (what a user recognises on the page and
    in alerts); a second target on the same HOST:PORT gets a numbered name."""
    targets: list[TargetConfig] = []
    names: set[str] = set()
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep or "://" in name:
            name, url = "", spec
        if not name:
            parts = urlsplit(url)
            try:
                port = parts.port
            except ValueError:  # its message repeats the "port": maybe a password's part
                port = None
            base = f"{parts.hostname}:{port}" if port else str(parts.hostname)
            name = base
            for n in range(2, len(specs) + 2):
                if name not in names:
                    break
                name = f"{base}-{n}"
        if name in names:
            raise ValueError(f"--target: name {name!r} is used twice")
        names.add(name)
        try:
            targets.append(TargetConfig(name=name, url=url, model=model))
        except ValidationError as exc:
            why = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            # a URL with an '@' is not repeated: where the password ends is what went wrong
            shown = f"number {len(targets) + 1}" if "@" in url else repr(spec)
            raise ValueError(f"--target {shown}: {why}") from None
    return targets
