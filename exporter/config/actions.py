"""The recovery actions' config: what each action type runs. Names, units, containers and URLs
come only from here, never from alert labels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from exporter.config.base import HEADER_NAME, Strict
from exporter.config.durations import Duration

__all__ = [
    "ActionConfig",
    "CommandAction",
    "DockerAction",
    "HttpAction",
    "HttpCall",
    "KubernetesAction",
    "SystemdAction",
    "check_headers",
]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]+$")
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def check_headers(headers: dict[str, Any]) -> dict[str, Any]:
    for name in headers:
        if not HEADER_NAME.match(name):
            raise ValueError(f"invalid HTTP header name {name!r}")
    return headers


class CommandAction(Strict):
    """Run an argv list without a shell; alert data arrives only as LLMHB_* environment variables."""

    type: Literal["command"] = "command"
    argv: list[str] = Field(min_length=1)
    timeout: Duration = Field(default=120.0, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: list[str] = Field(default_factory=lambda: ["PATH", "HOME", "LANG", "TZ"])
    max_output_bytes: int = Field(default=16384, ge=0, le=10 * 1024 * 1024)
    cwd: Path | None = None

    @field_validator("argv")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("argv[0] must name a program")
        if any("\x00" in part for part in value):
            raise ValueError("argv must not contain NUL characters")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _ENV_NAME.match(name):
                raise ValueError(f"invalid environment variable name {name!r}")
            if name.upper().startswith("LLMHB_"):
                raise ValueError(f"{name!r}: the LLMHB_ prefix is reserved for alert data")
        return value


class SystemdAction(Strict):
    """`systemctl restart UNIT` (optionally `--user`)."""

    type: Literal["systemd"] = "systemd"
    unit: str
    user: bool = False
    systemctl: str = "systemctl"
    timeout: Duration = Field(default=120.0, gt=0)

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if not _UNIT.match(value) or value.startswith("-"):
            raise ValueError(f"invalid systemd unit name {value!r}")
        return value


class DockerAction(Strict):
    """Restart a container through the Docker Engine API on its unix socket."""

    type: Literal["docker"] = "docker"
    container: str
    socket: Path = Path("/var/run/docker.sock")
    api_version: str | None = "v1.43"
    stop_timeout: int = Field(default=30, ge=0, le=3600)
    timeout: Duration | None = Field(default=None, gt=0)

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        if not _CONTAINER.match(value):
            raise ValueError(f"invalid container name or id {value!r}")
        return value

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^v\d+\.\d+$", value):
            raise ValueError("api_version must look like 'v1.43' (or null for unversioned)")
        return value


class KubernetesAction(Strict):
    """Rollout-restart a Deployment: patch its pod template's restartedAt annotation."""

    type: Literal["kubernetes"] = "kubernetes"
    deployment: str
    namespace: str | None = None
    api_url: str | None = None
    token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    ca_file: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    namespace_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    timeout: Duration = Field(default=30.0, gt=0)

    @field_validator("deployment", "namespace")
    @classmethod
    def _k8s_name(cls, value: str | None) -> str | None:
        if value is not None and (not _K8S_NAME.match(value) or len(value) > 253):
            raise ValueError(f"invalid Kubernetes object name {value!r}")
        return value


class HttpCall(Strict):
    """An outgoing HTTP call: a URL and headers, secret ones read from files."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    header_files: dict[str, Path] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("url must be an http:// or https:// URL")
        return value

    @field_validator("headers", "header_files")
    @classmethod
    def _headers(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_headers(value)


class HttpAction(HttpCall):
    """Call an orchestrator's restart endpoint."""

    type: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    body: str | None = None
    timeout: Duration = Field(default=30.0, gt=0)


ActionConfig = Annotated[
    CommandAction | SystemdAction | DockerAction | KubernetesAction | HttpAction,
    Field(discriminator="type"),
]
