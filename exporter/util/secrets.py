"""Secrets from files or environment variables. Values are never logged or put in errors."""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from exporter.errors import ConfigError, SecretUnavailable
from exporter.util.faults import FAULTS, FaultKind

__all__ = ["SecretReader", "bearer_ok", "header_values", "read_rotating", "read_secret"]

REREAD_AFTER = 10.0  # seconds a secret file read for a probe is kept before it is read again
_rotating: dict[Path, tuple[str, float]] = {}

# (file, env, what) -> the secret, None when neither source is set
SecretReader = Callable[[Path | None, str | None, str], str | None]


def read_secret(
    file: Path | None, env: str | None, what: str, error: type[ConfigError] = ConfigError
) -> str | None:
    """The secret from `file` (stripped) or env variable `env`; None if neither is set.
    Raises `error` (a ConfigError) naming `what` and where, never the value."""
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise error(
                f"{what}: cannot read {file}: {exc.strerror or type(exc).__name__}"
            ) from None
        if not value:
            raise error(f"{what}: {file} is empty")
        return value
    if env is not None:
        value = os.environ.get(env, "").strip()
        if not value:
            raise error(f"{what}: environment variable {env} is unset or empty")
        return value
    return None


def read_rotating(path: Path, what: str = "secret file", max_age: float | None = None) -> str:
    """A secret file's content (stripped) for the probes: read again once `max_age` passed,
    so a rotated key is used within seconds without a file read per probe (thousands a
    second at scale, on the event loop). A file that cannot be read, or reads empty (a
    rotation half done), keeps its last value and is the exporter's fault, not the target's:
    counted and listed in `FAULTS` under the file and `what` (the field) until it reads again.
    One never read raises SecretUnavailable (the probe then sends nothing)."""
    now = time.monotonic()
    kept = _rotating.get(path)
    if kept is not None and now - kept[1] < (REREAD_AFTER if max_age is None else max_age):
        return kept[0]
    try:
        value = path.read_text(encoding="utf-8").strip()
        problem = "" if value else "is empty"
    except (OSError, UnicodeDecodeError) as exc:
        value = ""
        problem = f"cannot be read: {getattr(exc, 'strerror', None) or type(exc).__name__}"
    key = f"secret:{path}"
    if problem:
        keeps = "; the value read before is still used" if kept is not None else ""
        FAULTS.raised(
            FaultKind.SECRET_FILE,
            key,
            f"{what} {path} {problem}{keeps}",
            file=str(path),
            field=what,
        )
        if kept is None:
            raise SecretUnavailable(f"{what} {path} {problem}", FaultKind.SECRET_FILE)
        value = kept[0]
    else:
        FAULTS.cleared(key)
    _rotating[path] = (value, now)
    return value


def header_values(headers: Mapping[str, str], files: Mapping[str, Path]) -> dict[str, str]:
    """Plain headers plus headers whose values are read from files now (so rotation works)."""
    out = dict(headers)
    for name, path in files.items():
        out[name] = path.read_text(encoding="utf-8").strip()
    return out


def bearer_ok(authorization: str | None, token: str) -> bool:
    """Constant-time check of an `Authorization: Bearer <token>` header."""
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())
