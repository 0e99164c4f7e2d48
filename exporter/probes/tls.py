"""TLS for the probes: a context per `tls:` setting (config/tls.py), and a TLS failure in words.

A probe that fails on TLS should say why the way an operator searches for it ("the server
asked for a client certificate", "certificate is not valid for 'x'"), not as an OpenSSL
constant or, worse, as "the server closed the connection"."""

from __future__ import annotations

import os
import ssl
from functools import lru_cache

from exporter.config.tls import TLSConfig

__all__ = ["context_for", "default_context", "files_stamp", "tls_words"]

# OpenSSL's reason codes a user meets, in words
_WORDS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate (mTLS) "
    "and got none",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the server refused the handshake (a client certificate "
    "missing, or no protocol or cipher in common)",
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not trust the client certificate's CA",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server refused the client certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the server refused the client certificate",
    "TLSV1_ALERT_DECRYPT_ERROR": "the server refused the client certificate (bad signature)",
    "WRONG_VERSION_NUMBER": "the server does not speak TLS on this port (plain HTTP? use http://)",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no TLS version in common with the server",
    "UNSUPPORTED_PROTOCOL": "no TLS version in common with the server",
    "TLSV1_UNRECOGNIZED_NAME": "the server does not know the name asked for (SNI)",
    "TLSV1_ALERT_INTERNAL_ERROR": "the server's TLS failed (internal error alert)",
}


def tls_words(exc: ssl.SSLError) -> str:
    """`exc` as one sentence starting with "TLS": the certificate check's own message for a
    verification failure, a plain sentence for the alerts a user meets, else OpenSSL's."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"TLS: the server's certificate is not trusted: {exc.verify_message}"
    reason = getattr(exc, "reason", None) or ""
    words = _WORDS.get(reason)
    if words is None:
        words = reason.lower().replace("_", " ") if reason else str(exc) or "handshake failed"
    return f"TLS: {words}"[:200]


@lru_cache(maxsize=1)
def default_context() -> ssl.SSLContext:
    """The system store, as every client of the exporter (util/http.py)."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def files_stamp(cfg: TLSConfig) -> tuple[int, ...]:
    """When the setting's files last changed (a rotated certificate or key is a new stamp)."""
    return tuple(
        os.stat(path).st_mtime_ns if path is not None else 0
        for path in (cfg.ca_file, cfg.cert_file, cfg.key_file)
    )


def context_for(cfg: TLSConfig, stamp: tuple[int, ...] = ()) -> ssl.SSLContext:
    """One context per distinct setting and version of its files (thousands of targets share
    a handful). Files are read now; config/tls.py refused unreadable ones at load, so an
    OSError (ssl.SSLError is one) here is a file that vanished or broke since."""
    return _context(cfg, stamp)


@lru_cache(maxsize=256)
def _context(cfg: TLSConfig, stamp: tuple[int, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
    if cfg.cert_file is not None and cfg.key_file is not None:
        context.load_cert_chain(str(cfg.cert_file), str(cfg.key_file), password=lambda: b"")
    if cfg.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context
