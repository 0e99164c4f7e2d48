"""What `run` refuses beyond a valid file: secrets it must read at start, a recovery
receiver that would run unauthenticated, and an event loop that is not installed. One check for `run` and `check-config`, so
`check-config` passes only what `run` accepts."""

from __future__ import annotations

from pathlib import Path

from exporter.config import ConfigError, Settings
from exporter.errors import RecoveryConfigError
from exporter.recovery.intake import receiver_token
from exporter.util.loop import loop_name
from exporter.util.secrets import SecretReader, read_secret

__all__ = ["preflight", "startup_secrets"]


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


def preflight(settings: Settings, *, read_secrets: bool = True) -> None:
    """Raise ConfigError for anything `run` would refuse to start with; without
    `read_secrets` the secret files and variables are not read, only required."""
    startup_secrets(settings, read_secret if read_secrets else _source_only)
    loop_name(settings.event_loop)
