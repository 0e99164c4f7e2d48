"""A target's Route (probes/transport.py) from its config: its TLS context, the name to verify,
and its proxy (`proxy_url`, or the environment's when `proxy_from_environment` is set)."""

from __future__ import annotations

import base64
import logging
import ssl
import time
import urllib.request
from urllib.parse import unquote, urlsplit

from exporter.config import TargetConfig
from exporter.errors import ConnectFailed
from exporter.probes.tls import context_for, files_stamp
from exporter.probes.transport import Proxy, Route
from exporter.util.identity import ByIdentity

__all__ = ["proxy_from_url", "route_for"]

log = logging.getLogger(__name__)

# a target's Route, the stamp of its TLS files, and when to look at them again
_ROUTES: ByIdentity[TargetConfig, tuple[Route | None, tuple[int, ...], float]] = ByIdentity()
RECHECK_FILES = 10.0  # seconds: a rotated certificate or key is used within this
_WARNED: set[str] = set()  # targets already logged as unverified (a /probe round is a new one)


def proxy_from_url(url: str) -> Proxy:
    """A proxy URL (http://[user:password@]host[:port]) parsed; errors never repeat it."""
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:
        raise ConnectFailed("the proxy URL cannot be parsed") from None
    if parts.scheme != "http" or not parts.hostname:
        raise ConnectFailed("the proxy URL is not an http://host:port URL")
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth = "Basic " + base64.b64encode(pair).decode("ascii")
    return Proxy(parts.hostname, port, auth)


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether NO_PROXY (comma-separated names, `.domain` or `domain` for a domain and its
    subdomains, `host:port`, `*` for all) covers the host, as curl reads it."""
    host = host.lower().strip("[]")
    for entry in no_proxy.lower().split(","):
        entry = entry.strip()
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.strip("[]").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _environment_proxy(url: str) -> str | None:
    """HTTPS_PROXY / HTTP_PROXY for the URL's scheme unless NO_PROXY covers its host (the
    lower- and upper-case spellings, as curl and Python's urllib read them)."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    found = proxies.get(parts.scheme)
    if not found or _bypassed(parts.hostname or "", parts.port, proxies.get("no", "")):
        return None
    return found


def _build(target: TargetConfig, stamp: tuple[int, ...]) -> Route | None:
    tls: ssl.SSLContext | None = None
    name = None
    if target.tls is not None and target.url.startswith("https:"):
        tls = context_for(target.tls, stamp)
        name = target.tls.server_name
        if target.tls.insecure_skip_verify and target.name not in _WARNED:
            if len(_WARNED) >= 4096:
                _WARNED.clear()
            _WARNED.add(target.name)
            log.warning(
                "target %s: TLS certificate verification is OFF (tls.insecure_skip_verify): "
                "anyone on the path can impersonate this server",
                target.name,
            )
    proxy_url = None
    if target.proxy_url is not None:
        proxy_url = target.proxy_url.get_secret_value()
    elif target.proxy_from_environment:
        proxy_url = _environment_proxy(target.url)
    proxy = proxy_from_url(proxy_url) if proxy_url else None
    if tls is None and name is None and proxy is None:
        return None
    return Route(tls, name, proxy)


def route_for(target: TargetConfig) -> Route | None:
    """The target's Route, built once per target config, and again when its TLS files changed
    (looked at every RECHECK_FILES seconds: certificates rotate without a reload)."""
    kept = _ROUTES.get(target)
    tls = target.tls
    if kept is not None and (tls is None or time.monotonic() < kept[2]):
        return kept[0]
    try:
        stamp = files_stamp(tls) if tls is not None else ()
        if kept is not None and kept[1] == stamp:
            _ROUTES.put(target, (kept[0], stamp, time.monotonic() + RECHECK_FILES))
            return kept[0]
        route = _build(target, stamp)
    except OSError:  # ssl.SSLError too: a file missing or half-written in a rotation
        if kept is None:
            raise
        _ROUTES.put(target, (kept[0], kept[1], time.monotonic() + RECHECK_FILES))
        return kept[0]  # the files read before still serve, as a rotating secret's last value
    _ROUTES.put(target, (route, stamp, time.monotonic() + RECHECK_FILES))
    return route
