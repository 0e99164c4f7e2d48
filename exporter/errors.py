"""The exporter's own exceptions: one root, so a caller can say which failure it expects.

    HeartbeatError                  root; never raised itself
    ├── ConfigError                 a configuration that cannot be used (file, environment,
    │   │                           flags); the CLI prints it and exits 2, a reload keeps
    │   │                           the running config
    │   ├── RecoveryConfigError     a recovery setting that cannot work (no bearer token,
    │   │                           an unreadable secret file)
    │   └── HistoryInUse            a history file another exporter already writes (its lock)
    ├── ExporterFault               the exporter's own fault before a request reached the
    │   │                           target (util/faults.py): never a target's state;
    │   │                           `kind` is the llm_exporter_errors_total label
    │   └── SecretUnavailable       a key/token file never read (missing, unreadable, empty)
    └── InputError                  something from outside that is refused; the message is
        │                           safe to send back or log (it never echoes a secret)
        ├── SDFormatError           a service-discovery document that is not target groups
        ├── ProbeRefused            a /probe request that will not run
        ├── EngineParseError        a server's metrics page that cannot be read as that
        │                           server's (probes/engines/); the engine check's detail
        ├── BodyTooLarge            a body past its cap (a target's answer, an HTTP-SD
        │                           document, a webhook); `limit` says the cap
        └── TransportError          what the probes' HTTP client met on the wire (probes/h1.py);
            │                       probes/_http.py turns each into a failure Reason
            ├── ConnectFailed       no connection: refused, unreachable, DNS, TLS handshake
            ├── ConnectTimeout      no connection within the connect timeout (a TimeoutError)
            ├── ReadTimeout         no byte within the read timeout (a TimeoutError)
            ├── ServerDisconnected  the server closed the connection before the answer ended
            └── BadResponse         not HTTP/1.x, or past the header limits

Foreign exceptions are translated where they enter: pydantic's ValidationError through
`validation_messages` (config loading, CLI flags, discovery, /probe, the webhook), transport
errors of the probes to a `Reason` in probes/ (a failed probe is a result, not an exception).
None of them is a ValueError: a parser's `except ValueError` must not swallow a body that was
too large. This module imports nothing of the exporter: every layer may use it.
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = [
    "BadResponse",
    "BodyTooLarge",
    "ConfigError",
    "ConnectFailed",
    "ConnectTimeout",
    "EngineParseError",
    "ExporterFault",
    "HeartbeatError",
    "HistoryInUse",
    "InputError",
    "ProbeRefused",
    "ReadTimeout",
    "RecoveryConfigError",
    "SDFormatError",
    "SecretUnavailable",
    "ServerDisconnected",
    "SharedRailsError",
    "TransportError",
    "field_path",
    "validation_messages",
]


class HeartbeatError(Exception):
    """The root of every exception the exporter raises on purpose."""


class ConfigError(HeartbeatError):
    """A configuration that cannot be used; the message names the source and the field."""


class RecoveryConfigError(ConfigError):
    """A recovery setting that cannot work; the CLI prints it and exits."""


class ExporterFault(HeartbeatError):
    """Our own side failed before a request reached the target; `kind` names how."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class SecretUnavailable(ExporterFault):
    """A secret file the probes need could not be read and no earlier value is kept."""


class HistoryInUse(ConfigError):
    """A history file whose lock another writer holds: two writers would lose records."""


class SharedRailsError(HeartbeatError):
    """The recovery receivers' shared ledger (a Kubernetes Lease) cannot be read or written."""


class InputError(HeartbeatError):
    """Input from outside that is refused; the message is safe to send back."""


class SDFormatError(InputError):
    """A file-SD or HTTP-SD document that is not a list of target groups."""


class ProbeRefused(InputError):
    """A request /probe will not run."""


class EngineParseError(InputError):
    """A target's metrics page that is not its server's metrics; the message says why."""


class BodyTooLarge(InputError):
    """A body (request or response) larger than `limit` bytes; refused while it streams."""

    def __init__(self, message: str = "", limit: int | None = None) -> None:
        super().__init__(message or (f"body larger than {limit} bytes" if limit else "too large"))
        self.limit = limit


class TransportError(InputError):
    """The probes' HTTP exchange failed; the message names no secret (no URL credentials)."""


class ConnectFailed(TransportError):
    """No connection to the target (the operating system's words are in the message)."""


class ConnectTimeout(TransportError, TimeoutError):
    """No connection within the connect timeout."""


class ReadTimeout(TransportError, TimeoutError):
    """No byte of the answer within the read timeout."""


class ServerDisconnected(TransportError):
    """The connection ended before the answer did."""


class BadResponse(TransportError):
    """Bytes that are not an HTTP/1.x answer, or past the limits of one."""


def field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_messages(exc: ValidationError, limit: int | None = None) -> list[tuple[str, str]]:
    """(where, message) of each error, without pydantic's prefixes, its URLs or the input
    (which may be large, odd or a secret). `where` is '' for the top level."""
    out = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a setting; check the spelling)"
        out.append((field_path(tuple(err["loc"])), msg))
    return out
