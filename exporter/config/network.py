"""How a target is reached: TLS (config/tls.py), a proxy, and the headers the probes send."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator

from exporter.config.base import Strict, check_authority, redact_url
from exporter.config.tls import TLSConfig

__all__ = ["Network", "TLSConfig"]


class Network(Strict):
    """The part of a target's settings about the way there (targets.py's TargetTemplate)."""

    tls: TLSConfig | None = None
    # http://[user:password@]host:port; https targets go through it with CONNECT. A secret:
    # shown without its credentials, and never repeated from a target's answer.
    proxy_url: SecretStr | None = None
    proxy_from_environment: bool = False  # HTTPS_PROXY / HTTP_PROXY / NO_PROXY, opt-in

    @property
    def tls_warning(self) -> str | None:
        """What the page and the API say of a target whose certificate is not verified."""
        if self.tls is not None and self.tls.insecure_skip_verify:
            return "TLS certificate NOT verified (tls.insecure_skip_verify)"
        return None

    @property
    def proxy_shown(self) -> str | None:
        """The proxy, without its credentials (for the page and the API)."""
        if self.proxy_url is not None:
            return redact_url(self.proxy_url.get_secret_value())
        return "from the environment" if self.proxy_from_environment else None

    @field_validator("proxy_url")
    @classmethod
    def _proxy(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                "proxy_url must be an http://host:port URL (the proxy is spoken "
                "to in plain HTTP; https targets are tunnelled with CONNECT)"
            )
        check_authority(parts)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("proxy_url must have no path, query or fragment")
        return value

    @field_validator("headers", check_fields=False)
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        """A header value is visible ASCII and tabs: a NUL or a line break would end it early
        or write another header, and a non-ASCII byte means different things to each server."""
        for name, text in value.items():
            bad = next((c for c in text if not (c == "\t" or " " <= c <= "~")), None)
            if bad is not None:
                what = "a line break" if bad in "\r\n" else f"character U+{ord(bad):04X}"
                raise ValueError(
                    f"the value of {name[:60]!r} contains {what}: header values must "
                    "be printable ASCII"
                )
        return value
