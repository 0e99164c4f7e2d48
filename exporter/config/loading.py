"""Loading: the file and the environment into `Settings`, every error as one `ConfigError`
that names the file and the field and never echoes a secret."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from exporter.config.settings import Settings
from exporter.errors import ConfigError, validation_messages

__all__ = ["ConfigError", "load_config", "read_yaml"]


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for where, msg in validation_messages(exc):
        lines.append(f"  {where or '(top level)'}: {msg}")
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
