"""A private CA made by the openssl CLI for a test: a server certificate for 127.0.0.1 and
`model.test`, one for another name only (`other.test`), and a client certificate (mTLS), all
signed by the CA, and contexts for a loopback server that uses them."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pki", "make_pki"]


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: tuple[Path, Path]  # cert, key: 127.0.0.1 and model.test
    wrong_name: tuple[Path, Path]  # cert, key: other.test only
    client: tuple[Path, Path]  # cert, key: a client certificate

    def server_context(self, *, wrong_name: bool = False, mtls: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*(self.wrong_name if wrong_name else self.server))
        if mtls:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self.ca))
        return context


def _run(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _leaf(d: Path, ca: Path, ca_key: Path, name: str, ext: str) -> tuple[Path, Path]:
    key, csr, cert, extfile = (d / f"{name}{s}" for s in (".key", ".csr", ".pem", ".ext"))
    extfile.write_text(ext)
    _run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
         "-keyout", str(key), "-out", str(csr))  # fmt: skip
    _run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "1", "-extfile", str(extfile), "-out", str(cert))  # fmt: skip
    return cert, key


def make_pki(d: Path) -> Pki:
    ca, ca_key = d / "ca.pem", d / "ca.key"
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
         "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    server = _leaf(d, ca, ca_key, "server", "subjectAltName=IP:127.0.0.1,DNS:model.test\n")
    wrong = _leaf(d, ca, ca_key, "other", "subjectAltName=DNS:other.test\n")
    client = _leaf(d, ca, ca_key, "client", "extendedKeyUsage=clientAuth\n")
    return Pki(ca, server, wrong, client)
