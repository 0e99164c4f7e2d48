"""Short human words for why a check failed or a target changed state.

The machine codes (`connect_error`, `health_timeout`, ...) stay the labels of metrics and the
`reason` fields of the API; the page shows these words first and the raw detail (the probe's
client message, a server's error text) only on demand. Written once, here: the API carries the words
as `summary`, so the page's script never re-derives them."""

from __future__ import annotations

import re

__all__ = ["check_summary", "state_summary"]

# What a person reads for each probe failure reason (exporter/probes/results.py: Reason).
_REASONS = {
    "connect_error": "cannot connect",
    "timeout": "no answer in time",
    "http_status": "unexpected HTTP status",
    "loading": "loading the model",
    "unauthorized": "API key refused",
    "server_error": "server error",
    "invalid_response": "not a valid answer",
    "validation_failed": "wrong answer",
    "model_missing": "model not served",
    "body_too_large": "answer too large",
    "stream_incomplete": "stream cut off",
    "not_offered": "not offered by this server",
    "rate_limited": "rate limited",
}

# What the operating system said, in the words of the probes' client (probes/client.py).
_CONNECT = (
    ("refused", "connection refused"),
    ("connect call failed", "connection refused"),
    ("name or service not known", "host not found"),
    ("nodename nor servname", "host not found"),
    ("temporary failure in name resolution", "host not found (DNS)"),
    ("no route to host", "no route to host"),
    ("network is unreachable", "network unreachable"),
    ("reset by peer", "connection reset"),
    ("client certificate", "TLS client certificate refused"),
    ("certificate is not trusted", "TLS certificate rejected"),
    ("tls:", "TLS handshake failed"),
    ("ssl", "TLS handshake failed"),
    ("certificate", "TLS certificate rejected"),
)

# Target-level reasons that are not "<check>_<reason>" (exporter/engine/state.py).
_STATE_REASONS = {
    "all_checks_passed": "all checks passed",
    "loading": "loading the model",
    "loading_too_long": "loading for too long",
    "recovery_grace": "restarted: waiting for it to come back",
    "rate_limited": "rate limited",
    "no_check_offered": "no check left that proves inference",
}
_CHECKS = ("health", "models", "chat")
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def _words(code: str) -> str:
    """A code nobody taught this module (a newer engine's): readable, not hidden. Text that is
    not a code (a hand-edited history file) is shown as it is."""
    if _CODE.match(code):
        return code.replace("_", " ")
    return code.strip() or "failed"


def check_summary(reason: str | None, detail: str | None, http_status: int | None) -> str:
    """One short phrase for a failed check: 'connection refused', 'no answer in time (the
    headers came: HTTP 200)'. An HTTP status reads as one, never like a number of seconds."""
    code = reason or "failed"
    text = _REASONS.get(code) or _words(code)
    low = (detail or "").lower()
    if code == "connect_error":
        text = next((words for key, words in _CONNECT if key in low), text)
    elif code == "timeout" and http_status:
        text = f"answer stalled after HTTP {http_status}"
    elif http_status and code in (
        "http_status",
        "server_error",
        "unauthorized",
        "loading",
        "not_offered",
        "rate_limited",
    ):
        text = f"{text} (HTTP {http_status})"
    return text


def state_summary(reason: str | None, detail: str | None) -> str:
    """The reason of a state, e.g. 'health: connection refused'; `detail` is the state
    machine's "<check>: <probe detail>"."""
    if not reason:
        return ""
    if reason in _STATE_REASONS:
        return _STATE_REASONS[reason]
    check, sep, code = reason.partition("_")
    if sep and check in _CHECKS:
        probe_detail = (detail or "").removeprefix(f"{check}: ")
        return f"{check}: {check_summary(code, probe_detail, None)}"
    return _words(reason)
