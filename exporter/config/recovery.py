"""The `recovery:` section of the exporter's config: receiver, rules, actions, rails, notifications.

Strict like the rest of the config: unknown keys are errors, durations accept seconds or "30s"/"5m".
Action names, units, containers and URLs come only from here, never from alert labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from exporter.config.actions import (
    ActionConfig,
    CommandAction,
    DockerAction,
    HttpAction,
    HttpCall,
    KubernetesAction,
    SystemdAction,
)
from exporter.config.base import NAME, Strict
from exporter.config.durations import Duration

__all__ = [
    "ActionConfig",
    "AuthConfig",
    "CommandAction",
    "DockerAction",
    "EmailChannel",
    "HttpAction",
    "KubernetesAction",
    "Match",
    "NotificationsConfig",
    "OverloadConfig",
    "RailsConfig",
    "RecoveryConfig",
    "RuleConfig",
    "SharedLease",
    "SystemdAction",
    "WebhookChannel",
]


class Match(Strict):
    """Which alerts a rule takes: all listed conditions must hold; empty lists match anything."""

    alertnames: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)


class RuleConfig(Strict):
    """An alert pattern and the one action it triggers; the first matching rule wins."""

    name: str
    match: Match = Field(default_factory=Match)
    action: ActionConfig

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"invalid rule name {value!r}")
        return value


class OverloadConfig(Strict):
    """When a live server counts as busy rather than broken (a restart would make it worse).
    The monitor's engine view decides first (state `overloaded`; checks.engine thresholds);
    these two also hold a restart back: a queue longer than `queue_threshold` in that view,
    and, for servers without metrics, a chat answer slower than `slow_chat_seconds`."""

    queue_threshold: float = Field(default=32, ge=0)
    slow_chat_seconds: Duration | None = Field(default=20.0, gt=0)


class SharedLease(Strict):
    """The Kubernetes Leases the receivers share their rails through (one per target)."""

    namespace: str | None = None  # default: the pod's own
    name_prefix: str = Field(
        default="llm-heartbeat-rails", pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$"
    )
    api_url: str | None = None
    token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    ca_file: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    namespace_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    timeout: Duration = Field(default=10.0, gt=0)


class RailsConfig(Strict):
    """Guards that keep recovery from becoming a restart storm."""

    cooldown: Duration = 300.0
    max_attempts: int = Field(default=3, ge=1)
    window: Duration = Field(default=3600.0, gt=0)
    backoff_base: Duration = 300.0
    backoff_max: Duration = 3600.0
    grace: Duration = 600.0
    verify_timeout: Duration = Field(default=900.0, gt=0)
    verify_interval: Duration = Field(default=15.0, gt=0)
    exhausted_check_interval: Duration = Field(default=30.0, gt=0)
    overload: OverloadConfig = Field(default_factory=OverloadConfig)
    # replicas decide on one ledger (recovery/shared.py, docs/ha.md): a file on one host,
    # a Kubernetes Lease per target in a cluster
    shared_file: Path | None = None
    shared_lease: SharedLease | None = None

    @model_validator(mode="after")
    def _one_ledger(self) -> RailsConfig:
        if self.shared_file is not None and self.shared_lease is not None:
            raise ValueError("set shared_file or shared_lease, not both")
        return self


class AuthConfig(Strict):
    """Bearer token for the receiver and the reset API, read from a file or an env variable."""

    token_file: Path | None = None
    token_env: str | None = None
    allow_unauthenticated_loopback: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> AuthConfig:
        if self.token_file is not None and self.token_env is not None:
            raise ValueError("set either token_file or token_env, not both")
        return self


class EmailChannel(Strict):
    """SMTP delivery (SSL, STARTTLS or plain), optional login; password from a file or env."""

    name: str
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "starttls"
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    from_addr: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    ca_file: Path | None = None
    timeout: Duration = Field(default=15.0, gt=0)
    subject_prefix: str = "[llm-heartbeat]"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _password(self) -> EmailChannel:
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("set either password_file or password_env, not both")
        if (self.password_file or self.password_env) and not self.username:
            raise ValueError("a password needs a username")
        return self


class WebhookChannel(HttpCall):
    """JSON POST: `json` sends the event object, `slack` sends {"text": ...}."""

    name: str
    format: Literal["json", "slack"] = "json"
    timeout: Duration = Field(default=10.0, gt=0)


Event = Literal["started", "succeeded", "failed", "interrupted", "exhausted"]
ALL_EVENTS: tuple[Event, ...] = ("started", "succeeded", "failed", "interrupted", "exhausted")


class NotificationsConfig(Strict):
    """Where recovery events go. Routine alerting to humans stays with Alertmanager's receivers."""

    events: list[Event] = Field(default_factory=lambda: list(ALL_EVENTS))
    retries: int = Field(default=2, ge=0, le=10)
    retry_delay: Duration = 2.0
    email: list[EmailChannel] = Field(default_factory=list)
    webhooks: list[WebhookChannel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> NotificationsConfig:
        names = [c.name for c in self.email] + [c.name for c in self.webhooks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"notification channel names must be unique: {', '.join(dupes)}")
        for name in names:
            if not NAME.match(name):
                raise ValueError(f"invalid channel name {name!r}")
        return self


class RecoveryConfig(Strict):
    """The whole `recovery:` section. Disabled by default: restarting a model server is risky."""

    enabled: bool = False
    dry_run: bool = False
    auth: AuthConfig = Field(default_factory=AuthConfig)
    target_label: str = "target"
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, le=64 * 1024 * 1024)
    body_timeout: Duration = Field(default=10.0, gt=0, le=300)
    """The whole webhook body must arrive within this (a body trickled byte by byte gets
    408 and the connection is closed)."""
    dedup_size: int = Field(default=10000, ge=1)
    history_file: Path | None = None
    rules: list[RuleConfig] = Field(default_factory=list)
    rails: RailsConfig = Field(default_factory=RailsConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)

    @model_validator(mode="after")
    def _unique_rules(self) -> RecoveryConfig:
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        return self

    def unknown_targets(self, configured: set[str] | frozenset[str]) -> list[str]:
        """Targets named in rules that are not configured (for the core's cross-check)."""
        named = {t for r in self.rules for t in r.match.targets}
        label = {
            r.match.labels[self.target_label]
            for r in self.rules
            if self.target_label in r.match.labels
        }
        return sorted((named | label) - set(configured))
