"""Per-target TLS (`tls:`, config/tls.py) against loopback servers that use a private CA made
in the test: a server certificate, one for another name, a client certificate (mTLS). Each
case goes through the config and the probes' client as a user's target does."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.config import ConfigError, Settings, TargetConfig, load_config
from exporter.config.probe import ProbeModule
from exporter.probes import ProbeContext, make_client, probe_health, route
from exporter.probes.results import ProbeResult, Reason
from exporter.server.probe_endpoint import target_for
from exporter.server.words import check_summary
from tests.core.certs import Pki, make_pki
from tests.core.live import running_exporter
from tests.core.nginx import running_nginx
from tests.core.test_client import OK, Raw, answer
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@asynccontextmanager
async def https(context: ssl.SSLContext) -> AsyncIterator[tuple[str, Raw]]:
    state = Raw(answer(OK))
    server = await asyncio.start_server(state._serve, "127.0.0.1", 0, ssl=context)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}", state
    finally:
        server.close()
        await server.wait_closed()


async def probe(
    url: str, tls: dict[str, Any] | None, times: int = 1, name: str = "t"
) -> list[ProbeResult]:
    target = TargetConfig(name=name, url=url, tls=tls)
    async with make_client(8) as client:
        return [await probe_health(ProbeContext(client, target, 3.0)) for _ in range(times)]


async def test_a_private_ca_is_trusted_through_the_targets_tls_setting(pki: Pki) -> None:
    async with https(pki.server_context()) as (url, state):
        (refused,) = await probe(url, None)  # the system store does not know the CA
        assert refused.reason is Reason.CONNECT_ERROR
        assert "not trusted" in refused.detail and "issuer" in refused.detail, refused.detail
        assert check_summary("connect_error", refused.detail, None) == "TLS certificate rejected"
        results = await probe(url, {"ca_file": str(pki.ca)}, times=3)
    assert [r.success for r in results] == [True] * 3, results
    assert state.connections == 1  # verified once, kept alive (a refused handshake never counts)


async def test_a_certificate_for_another_name_is_refused_unless_that_name_is_configured(
    pki: Pki,
) -> None:
    async with https(pki.server_context(wrong_name=True)) as (url, _):
        (wrong,) = await probe(url, {"ca_file": str(pki.ca)})
        (named,) = await probe(url, {"ca_file": str(pki.ca), "server_name": "other.test"})
        (other,) = await probe(url, {"ca_file": str(pki.ca), "server_name": "model.test"})
    assert wrong.reason is Reason.CONNECT_ERROR and "not valid for '127.0.0.1'" in wrong.detail
    assert named.success, named.detail
    assert other.reason is Reason.CONNECT_ERROR and "model.test" in other.detail, other.detail


@contextmanager
def mtls_server(context: ssl.SSLContext) -> Iterator[str]:
    """A blocking TLS server as real ones behave on a refused client certificate: the alert is
    sent, then the connection is closed gracefully (asyncio's own server drops it unsent)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            conn = context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            conn.settimeout(5)
            try:
                conn.do_handshake()
                conn.recv(65536)
                conn.sendall(OK)
            except (ssl.SSLError, OSError):
                conn.shutdown(socket.SHUT_WR)
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(10)


async def test_mtls_a_missing_client_certificate_is_a_connect_error_in_words(pki: Pki) -> None:
    with mtls_server(pki.server_context(mtls=True)) as url:
        (refused,) = await probe(url, {"ca_file": str(pki.ca)})
        cert, key = pki.client
        (accepted,) = await probe(url, {"ca_file": str(pki.ca), "cert_file": cert, "key_file": key})
    assert refused.reason is Reason.CONNECT_ERROR, refused.detail  # not "server closed"
    assert "client certificate" in refused.detail, refused.detail
    assert check_summary("connect_error", refused.detail, None) == "TLS client certificate refused"
    assert accepted.success, accepted.detail


async def test_insecure_skip_verify_works_and_says_so_loudly(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with https(pki.server_context(wrong_name=True)) as (url, _):
        (result,) = await probe(url, {"insecure_skip_verify": True}, name="loud")
    assert result.success, result.detail
    warned = [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    assert warned and warned[0].levelno == logging.WARNING
    target = TargetConfig(name="t", url=url, tls={"insecure_skip_verify": True})
    assert target.tls_warning is not None and "NOT verified" in target.tls_warning
    assert TargetConfig(name="t", url=url).tls_warning is None


@pytest.mark.parametrize(
    ("tls", "said"),
    [
        ("{ca_file: MISSING}", "tls: ca_file: cannot read"),
        ("{cert_file: CERT}", "cert_file and key_file go together"),
        ("{ca_file: KEY}", "holds no PEM certificate"),
        ("{cert_file: CERT, key_file: MISSING}", "key_file: cannot read"),
        ("{cert_file: CA, key_file: KEY}", "are not a PEM certificate and its unencrypted"),
        ("{insecure: true}", "unknown key"),
    ],
)
def test_tls_files_are_checked_at_load_naming_the_file_and_field(
    pki: Pki, tmp_path: Path, tls: str, said: str
) -> None:
    cert, key = pki.client
    missing = tmp_path / "nope.pem"
    text = tls.replace("MISSING", str(missing)).replace("CERT", str(cert)).replace("KEY", str(key))
    text = text.replace("CA", str(pki.ca))
    cfg = tmp_path / "c.yml"
    cfg.write_text(f"targets:\n  - name: a\n    url: https://x\n    tls: {text}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(cfg)
    message = str(refused.value)
    assert str(cfg) in message and "targets[0].tls" in message and said in message, message
    if "MISSING" in tls:
        assert str(missing) in message


def test_an_encrypted_key_is_refused_at_load_and_never_prompted_for(
    pki: Pki, tmp_path: Path
) -> None:
    """OpenSSL asks a terminal for the passphrase of an encrypted key unless told a password:
    `check-config` run by hand would hang waiting. It is refused, naming the field, at once."""
    cert, key = pki.client
    encrypted = tmp_path / "client-enc.key"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:pw-42",
                    "-out", str(encrypted)], check=True, capture_output=True)  # fmt: skip
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        f"targets:\n  - name: a\n    url: https://x\n"
        f"    tls: {{cert_file: {cert}, key_file: {encrypted}}}\n"
    )
    cmd = [sys.executable, "-m", "exporter.cli", "check-config", str(cfg)]
    # a terminal-less run with no stdin: a prompt would read EOF or block until the timeout
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "targets[0].tls" in done.stderr and "unencrypted private key" in done.stderr
    assert "pass phrase" not in (done.stdout + done.stderr).lower()


async def test_the_page_and_the_api_show_an_unverified_target(pki: Pki, tmp_path: Path) -> None:
    async with https(pki.server_context(wrong_name=True)) as (url, _):
        targets = [
            TargetConfig(name="lax", url=url, tls={"insecure_skip_verify": True},
                         checks={"models": {"enabled": False}, "chat": {"enabled": False}}),
            TargetConfig(name="strict", url=url, tls={"ca_file": pki.ca},
                         proxy_url="http://me:proxy-pw-31@127.0.0.1:9"),
        ]  # fmt: skip
        settings = Settings(targets=targets, default_interval=0.5)
        async with running_exporter(settings) as (_, base), httpx.AsyncClient() as http:

            async def lax_up() -> bool:
                api = (await http.get(base + "/api/v1/targets")).json()
                return bool(api["targets"][0]["state"] == "up")

            await wait_for(lax_up, timeout=30)
            api = (await http.get(base + "/api/v1/targets")).json()
            page = (await http.get(base + "/")).text
    lax, strict = api["targets"]
    assert lax["tls_warning"] == "TLS certificate NOT verified (tls.insecure_skip_verify)"
    assert strict["tls_warning"] is None and strict["proxy"] == "http://127.0.0.1:9"
    assert page.count("NOT verified") == 1 and "proxy-pw-31" not in page + json.dumps(api)


async def test_a_probe_module_takes_tls_like_a_target(pki: Pki) -> None:
    module = ProbeModule(
        scheme="https",
        tls={"ca_file": pki.ca},
        checks={"models": {"enabled": False}, "chat": {"enabled": False}},
    )
    async with https(pki.server_context()) as (url, _):
        target = target_for(url, module, None)
        async with make_client(8) as client:
            result = await probe_health(ProbeContext(client, target, 3.0))
    assert target.tls is not None and target.tls.ca_file == pki.ca
    assert result.success, result.detail


async def test_nginx_asking_for_a_client_certificate_says_so(pki: Pki, tmp_path: Path) -> None:
    cert, key = pki.server
    server = f"""
    listen 127.0.0.1:{{port}} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_client_certificate {pki.ca};
    ssl_verify_client on;
    location / {{ return 200 ok; }}
"""
    with running_nginx(tmp_path, server) as port:
        url = f"https://127.0.0.1:{port}"
        (refused,) = await probe(url, {"ca_file": str(pki.ca)})
        client_cert, client_key = pki.client
        tls = {"ca_file": str(pki.ca), "cert_file": client_cert, "key_file": client_key}
        (accepted,) = await probe(url, tls)
    # nginx finishes the handshake and answers 400 with an HTML page: its words are kept
    assert refused.detail == "HTTP 400 No required SSL certificate was sent", refused.detail
    assert accepted.success, accepted.detail


async def test_a_rotated_ca_file_is_used_without_a_reload(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "other").mkdir()
    other = make_pki(tmp_path / "other")  # another CA: the server is not signed by it
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(other.ca.read_bytes())
    monkeypatch.setattr(route, "RECHECK_FILES", 0.0)
    target = TargetConfig(name="rotating", url="https://x", tls={"ca_file": ca_file})
    async with https(pki.server_context()) as (url, _):
        target = target.model_copy(update={"url": url})
        async with make_client(8) as client:
            before = await probe_health(ProbeContext(client, target, 3.0))
            ca_file.write_bytes(pki.ca.read_bytes())  # the operator rotates the file in place
            os.utime(ca_file, ns=(1, 10**18))  # a new mtime even within the clock's tick
            after = await probe_health(ProbeContext(client, target, 3.0))
    assert before.reason is Reason.CONNECT_ERROR and "not trusted" in before.detail
    assert after.success, after.detail


async def test_a_tls_file_missing_mid_rotation_keeps_the_last_good_one(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(pki.ca.read_bytes())
    monkeypatch.setattr(route, "RECHECK_FILES", 0.0)
    async with https(pki.server_context()) as (url, _):
        target = TargetConfig(name="rotating", url=url, tls={"ca_file": ca_file})
        async with make_client(8) as client:
            first = await probe_health(ProbeContext(client, target, 3.0))
            ca_file.unlink()  # a rotation half done: the old file gone, the new not there yet
            second = await probe_health(ProbeContext(client, target, 3.0))
    assert first.success and second.success, (first.detail, second.detail)
