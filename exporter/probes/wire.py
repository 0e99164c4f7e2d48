"""The bytes a probe sends: a target URL parsed once (where to connect, the request line, the
Host header, credentials given in the URL) and the request written from it. The probes' client
(probes/client.py) writes exactly this; nothing of the URL that could hold a password ever
reaches an error message."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

from exporter.errors import TransportError
from exporter.util.http import USER_AGENT

__all__ = ["Where", "request_bytes", "where"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"  # kept as they are in a path (an existing %XX stays)
_SAFE_QUERY = _SAFE_PATH + "?"


class Where(NamedTuple):
    """A URL parsed once: where to connect and what the request line and Host say."""

    key: tuple[str, str, int]  # scheme, host, port: the pool's key
    host: str
    port: int
    tls: bool
    host_header: str
    auth: str | None  # Basic credentials given in the URL
    target: str  # the request target: path and query, percent-encoded


def where(url: str) -> Where:
    """The parsed URL; errors never repeat the URL (it may hold a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise TransportError("the URL cannot be parsed") from None
    return Where(*_server(parts.scheme, parts.netloc), _target(parts.path, parts.query))


@lru_cache(maxsize=4096)
def _target(path: str, query: str) -> str:
    """The request target, one string for every target asking the same path."""
    target = quote(path or "/", safe=_SAFE_PATH)
    if query:
        target += "?" + quote(query, safe=_SAFE_QUERY)
    return target


@lru_cache(maxsize=65536)
def _server(
    scheme: str, netloc: str
) -> tuple[tuple[str, str, int], str, int, bool, str, str | None]:
    """Everything of a URL but the path, once per server: a target's checks ask the same one
    (thousands of targets: their strings kept once, not once per path)."""
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        raise TransportError("the URL cannot be parsed") from None
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise TransportError("not an absolute http:// or https:// URL")
    if not host.isascii():  # an IDN: connected to and named as DNS knows it (punycode)
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise TransportError("the host is not a valid international domain name") from None
    port = port or _DEFAULT_PORTS[scheme]
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth = "Basic " + base64.b64encode(pair).decode("ascii")
    return (scheme, host, port), host, port, scheme == "https", host_header, auth


def request_bytes(
    method: str,
    where: Where,
    headers: Mapping[str, str],
    body: bytes | None,
    proxy: str | None = None,
) -> bytes:
    """The request's bytes. The caller's headers replace the defaults of the same name (any
    case); a header with a line break is refused (it would write a second header). `proxy`
    (the Proxy-Authorization value, "" for none): sent to an HTTP proxy, in absolute form."""
    fields = {
        "host": ("Host", where.host_header),
        "user-agent": ("User-Agent", USER_AGENT),
        "accept": ("Accept", "*/*"),
        "accept-encoding": ("Accept-Encoding", "identity"),
    }
    if where.auth is not None:
        fields["authorization"] = ("Authorization", where.auth)
    for name, value in headers.items():
        fields[name.lower()] = (name, value)
    if body is not None:
        fields.setdefault("content-type", ("Content-Type", "application/json"))
        fields["content-length"] = ("Content-Length", str(len(body)))
    target = where.target
    if proxy is not None:
        target = f"http://{where.host_header}{target}"
        if proxy:
            fields["proxy-authorization"] = ("Proxy-Authorization", proxy)
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in fields.values():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise TransportError(f"request header {name.strip()[:40]!r} is not valid")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    head = "\r\n".join(lines).encode("utf-8")
    return head if body is None else head + body
