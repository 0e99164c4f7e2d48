"""What `run` refuses beyond a valid file: secrets it must read at start, a recovery
receiver that would run unauthenticated, and an event loop that is not installed. One check for `run` and `check-config`, so
`check-config` passes only what `run` accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from exporter.config import ConfigError, Settings
from exporter.errors import RecoveryConfigError
from exporter.recovery.intake import receiver_token
from exporter.util.loop import loop_name
from exporter.util.secrets import SecretReader, read_secret

__all__ = ["preflight", "secret_files", "startup_secrets", "unreadable_secret_files"]

# files a setting names that are not secrets the exporter reads (it writes them)
_NOT_SECRETS = frozenset({"history_file", "log_file"})


def _source_only(file: Path | None, env: str | None, what: str) -> str | None:
    """A stand-in for the secret when only its source is checked (secrets mounted at deploy)."""
    return "(not read)" if file is not None or env is not None else None


def startup_secrets(settings: Settings, read: SecretReader = read_secret) -> dict[str, str | None]:
    """The secrets read once at start (recovery receiver, /probe, /-/reload tokens); raises
    ConfigError naming what is missing, never a value."""
    probe, reload = settings.probe, settings.reload
    try:
        return {
            "recovery": receiver_token(settings.recovery, settings.listen_host, read),
            "probe": read(probe.token_file, probe.token_env, "probe token"),
            "reload": read(reload.token_file, reload.token_env, "reload token"),
        }
    except RecoveryConfigError as exc:
        raise ConfigError(str(exc)) from None


def secret_files(node: Any, where: str = "") -> Iterator[tuple[str, Path]]:
    """(field path, file) of every key, token, password or TLS file the config names (set
    in it, not a default such as the Kubernetes service account's): `targets[0].api_key_file`."""
    if isinstance(node, BaseModel):
        for name in sorted(node.model_fields_set):
            value = getattr(node, name, None)
            path = f"{where}.{name}" if where else name
            if name.endswith("_file") and name not in _NOT_SECRETS and isinstance(value, Path):
                yield path, value
            elif name == "header_files" and isinstance(value, dict):
                yield from ((f"{path}.{k}", v) for k, v in value.items() if isinstance(v, Path))
            else:
                yield from secret_files(value, path)
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            yield from secret_files(item, f"{where}[{i}]")
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from secret_files(item, f"{where}.{key}")


def unreadable_secret_files(settings: Settings) -> list[str]:
    """`field: file: why` for every secret file that cannot be read now or is empty."""
    problems = []
    for field, path in secret_files(settings):
        try:
            empty = not path.read_bytes().strip()
        except OSError as exc:
            problems.append(f"{field}: cannot read {path}: {exc.strerror or type(exc).__name__}")
            continue
        if empty:
            problems.append(f"{field}: {path} is empty")
    return problems


def preflight(settings: Settings, *, read_secrets: bool = True, source: str = "") -> None:
    """Raise ConfigError for anything `run` would refuse to start with, naming `source` (the
    config file) and the field; without `read_secrets` the secret files and variables are
    not read, only required."""
    where = f"invalid configuration in {source}" if source else "invalid configuration"
    if read_secrets:
        problems = unreadable_secret_files(settings)
        if problems:
            raise ConfigError(
                "\n  ".join([f"{where}: secret files the exporter needs:", *problems])
            )
    try:
        startup_secrets(settings, read_secret if read_secrets else _source_only)
        loop_name(settings.event_loop)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}" if source else str(exc)) from None
