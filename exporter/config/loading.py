"""Loading: the file and the environment into `Settings`, every error as one `ConfigError`
that names the file and the field and never echoes a secret."""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from exporter.config.settings import Settings
from exporter.errors import ConfigError, field_path

__all__ = ["ConfigError", "load_config", "read_yaml"]

_ENV_PREFIX = "LLM_HEARTBEAT_"


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a setting; check the spelling)"
            close = difflib.get_close_matches(str(loc[-1]), _keys_at(loc[:-1]), n=1, cutoff=0.6)
            if close:
                msg = f"unknown key; did you mean {close[0]!r}?"
        lines.append(f"  {field_path(loc) or '(top level)'}: {msg}")
    return "\n".join(lines)


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The setting names valid at `loc` (for "did you mean"); [] where it cannot tell."""
    model: Any = Settings
    for part in loc:
        if isinstance(part, int):
            continue  # an index into a list: the model is the list's item type
        field = model.model_fields.get(part) if _is_model(model) else None
        if field is None:
            return []
        model = _inner_model(field.annotation)
    return list(model.model_fields) if _is_model(model) else []


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _inner_model(tp: Any) -> Any:
    """The model inside `X`, `X | None` or `list[X]` (None for anything else)."""
    if _is_model(tp):
        return tp
    if typing.get_origin(tp) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            inner = _inner_model(arg)
            if inner is not None:
                return inner
    return None


def _env_used() -> list[str]:
    """The LLM_HEARTBEAT_* variables set now (the config file's own name excepted)."""
    return sorted(
        k
        for k in os.environ
        if k.upper().startswith(_ENV_PREFIX) and k.upper() != "LLM_HEARTBEAT_CONFIG"
    )


def _unknown_env(names: list[str]) -> list[str]:
    """One line per LLM_HEARTBEAT_* variable that names no setting (pydantic-settings would
    ignore it silently: a misspelt LLM_HEARTBEAT_DEFAULT_INTERVALL=5 changed nothing), with
    the nearest real name; `__` separates nested keys (LLM_HEARTBEAT_SHARDING__INDEX)."""
    lines = []
    for name in names:
        parts = name[len(_ENV_PREFIX) :].lower().split("__")
        model: Any = Settings
        for depth, part in enumerate(parts):
            if not _is_model(model):
                break  # inside a list or a mapping: its items are validated as values
            field = model.model_fields.get(part)
            if field is None:
                known = list(model.model_fields)
                close = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
                head = "__".join(parts[:depth]).upper()
                hint = ""
                if close:
                    spelt = f"{head}__{close[0].upper()}" if head else close[0].upper()
                    hint = f"; did you mean {_ENV_PREFIX}{spelt}?"
                lines.append(f"  {name}: unknown variable (not a setting){hint}")
                break
            model = _inner_model(field.annotation) or field.annotation
    return lines


def _non_string_key(data: Any, where: str = "") -> str | None:
    """The path to the first mapping key that is not a string (YAML allows `1: x`)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                return f"{where}{key!r}" if where else repr(key)
            found = _non_string_key(value, f"{where}{key}.")
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = _non_string_key(value, f"{where.rstrip('.')}[{i}].")
            if found:
                return found
    return None


def read_yaml(path: Path) -> dict[str, Any]:
    """The file's top-level mapping, or a ConfigError naming the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"invalid configuration in {path}: not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"invalid configuration in {path}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"invalid YAML in {path}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {path}: the top level must be a mapping")
    bad = _non_string_key(data)
    if bad is not None:
        raise ConfigError(
            f"invalid configuration in {path}: key {bad} must be a name, not a number"
        )
    return data


def load_config(path: Path | str | None = None) -> Settings:
    """Load the YAML file (if any) and the environment; raise ConfigError on any problem."""
    if path is None and os.environ.get("LLM_HEARTBEAT_CONFIG"):
        path = os.environ["LLM_HEARTBEAT_CONFIG"]
    data: dict[str, Any] = {}
    env = _env_used()
    sources = []
    if path is not None:
        path = Path(path)
        data = read_yaml(path)
        sources.append(str(path))
    if env or not sources:
        # the hint names the variables only when some were set
        sources.append(f"the environment ({', '.join(env)})" if env else "the environment")
    source = " and ".join(sources)
    unknown = _unknown_env(env)
    if unknown:
        raise ConfigError("\n".join(["invalid configuration in the environment:", *unknown]))
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    except SettingsError as exc:
        # a variable holding bad JSON; its value may be a secret, so it is not repeated
        field = re.search(r'field "([^"]+)"', str(exc))
        name = f"{_ENV_PREFIX}{field.group(1).upper()}" if field else "an LLM_HEARTBEAT_* variable"
        raise ConfigError(f"invalid configuration in {name}: not valid JSON") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid configuration in {source}: {type(exc).__name__}") from None
