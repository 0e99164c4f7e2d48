"""Addresses: is a host loopback, and a URL without its credentials."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

__all__ = ["is_loopback", "redact_url"]


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an IP literal, bracketed or with an IPv6 zone, or `localhost`) is
    loopback. Names are not resolved: any other name is not loopback."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """The URL without user:password, safe for labels, logs and notifications (and unable to
    fail: it never parses the port)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
