"""A target's TLS settings, after blackbox_exporter's `tls_config`: a private CA, a client
certificate (mTLS), the name to verify, or (loudly) no verification at all.

The files are read here, at config load, so a missing or unreadable one is refused with its
field and path before a probe runs. The probes read them again when they change on disk
(probes/route.py); one missing mid-rotation leaves the last good version in use."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from pydantic import model_validator

from exporter.config.base import Strict

__all__ = ["TLSConfig", "files_unchecked"]

_CHECK_FILES: ContextVar[bool] = ContextVar("tls_check_files", default=True)


@contextmanager
def files_unchecked() -> Iterator[None]:
    """`check-config --skip-secrets`: files mounted at deploy time (a client key is a secret)
    are named, not read."""
    token = _CHECK_FILES.set(False)
    try:
        yield
    finally:
        _CHECK_FILES.reset(token)


def _readable(field: str, path: Path) -> None:
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        raise ValueError(
            f"{field}: cannot read {path}: {exc.strerror or type(exc).__name__}"
        ) from None


class TLSConfig(Strict):
    """`tls:` of a target (https only)."""

    ca_file: Path | None = None  # PEM: the CA(s) that sign the server's certificate
    cert_file: Path | None = None  # PEM: the client certificate (mTLS) ...
    key_file: Path | None = None  # ... and its private key
    server_name: str | None = None  # the name the certificate must carry (SNI too)
    insecure_skip_verify: bool = False  # no verification at all: logged and shown as such

    @model_validator(mode="after")
    def _check(self) -> TLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both or neither")
        if self.server_name is not None and (
            not self.server_name or any(c.isspace() or c in "/:@" for c in self.server_name)
        ):
            raise ValueError("server_name must be a host name")
        if not _CHECK_FILES.get():
            return self
        for field in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, field)
            if path is not None:
                _readable(field, path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca_file))
            except ssl.SSLError:
                raise ValueError(f"ca_file: {self.ca_file} holds no PEM certificate") from None
        if self.cert_file is not None and self.key_file is not None:
            try:
                # an empty password: an encrypted key is refused here, never prompted for on a
                # terminal (check-config run by hand would wait for a passphrase)
                context.load_cert_chain(
                    str(self.cert_file), str(self.key_file), password=lambda: b""
                )
            except ssl.SSLError:
                raise ValueError(
                    f"cert_file/key_file: {self.cert_file} and {self.key_file} are not a PEM "
                    "certificate and its unencrypted private key"
                ) from None
        return self
