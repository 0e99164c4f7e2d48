"""A target's own secrets, never kept from its answer.

A gateway that answers 401 with "invalid key: Bearer sk-..." repeats the very key the probe
sent; a proxy's error page can repeat its credentials. Whatever a probe keeps of an answer
(the detail, a completion, model ids) passes `redact` once, where the result is built
(probes/_base.py), so the API, the page, the logs, the history file and the metrics all see
the marker instead of the key."""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, unquote, urlsplit

from exporter.config import TargetConfig
from exporter.errors import SecretUnavailable
from exporter.util.identity import ByIdentity

__all__ = ["MARKER", "known_secrets", "redact", "secrets_of"]

MARKER = "[redacted]"
MIN_LENGTH = 4  # shorter values would shred ordinary words
# headers whose value is a credential whatever its length; any other value of LONG_VALUE
# characters or more is treated as one too (a token in a custom header)
_SENSITIVE = re.compile(r"auth|key|token|secret|cookie|session|passw|signature|credential", re.I)
LONG_VALUE = 12


def _url_credentials(url: str | None) -> list[str]:
    """A URL's password and user name as written, decoded, and as a Basic header carries them."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return []
    if user is None and password is None:
        return []
    user, password = user or "", password or ""
    pair = f"{unquote(user)}:{unquote(password)}"
    found = [password, unquote(password), base64.b64encode(pair.encode()).decode("ascii")]
    if password:  # a user name alone is an identity, a user name with a password a login
        found += [user, unquote(user)]
    return found


def known_secrets(target: TargetConfig, api_key: str | None) -> tuple[str, ...]:
    """Every value of `target` a server should never be able to make us publish: the API key,
    URL and proxy credentials, credential-like header values. Longest first, so a key that
    contains another is replaced whole."""
    found: list[str] = []
    if api_key:
        found += [api_key, f"Bearer {api_key}", quote(api_key, safe="")]
    found += _url_credentials(target.url)
    proxy = target.proxy_url
    if proxy is not None:
        found += _url_credentials(proxy.get_secret_value())
    for name, value in target.headers.items():
        if _SENSITIVE.search(name) or len(value) >= LONG_VALUE:
            found.append(value)
            scheme, _, rest = value.partition(" ")
            if rest and len(rest) >= MIN_LENGTH and scheme.isalpha():
                found.append(rest)  # "Bearer xyz", "Token xyz": the credential alone too
    unique = {s for s in found if len(s) >= MIN_LENGTH}
    return tuple(sorted(unique, key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every known secret replaced by MARKER."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MARKER)
    return text


_KEPT: ByIdentity[TargetConfig, tuple[str | None, tuple[str, ...]]] = ByIdentity()


def secrets_of(target: TargetConfig) -> tuple[str, ...]:
    """`known_secrets` of a target with its current API key (a rotated key counts at once),
    worked out once per target and key, not per probe."""
    try:
        key = target.resolve_api_key()
    except (OSError, SecretUnavailable):  # a key file never read: nothing sent, nothing to hide
        key = None
    kept = _KEPT.get(target)
    if kept is not None and kept[0] == key:
        return kept[1]
    found = known_secrets(target, key)
    _KEPT.put(target, (key, found))
    return found
