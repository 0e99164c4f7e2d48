"""Notifications: real SMTP delivery into aiosmtpd (plain+login and STARTTLS), webhooks (JSON and
Slack) into a local sink, and a failing channel that is retried, counted and never blocks."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client import CollectorRegistry

from exporter.config.recovery import NotificationsConfig
from exporter.recovery.notify import Notifier, RecoveryEvent
from tests.conftest import free_port
from tests.recovery.servers import Seen, stub_server

PASSWORD = "smtp-pa55word-!@#"
EVENT = RecoveryEvent(
    event="exhausted",
    target="vllm",
    rule="restart",
    action="command",
    alertname="LLMTargetDown",
    detail="3 attempts within 3600s failed",
    timestamp=1735725600.0,
)


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"heartbeat"
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


@pytest.fixture
def smtp_plain() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    ctl = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    ctl.start()
    try:
        yield sink, port
    finally:
        ctl.stop()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class Harness:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.counts: dict[tuple[str, str], int] = {}
        self.notifier = Notifier(
            NotificationsConfig.model_validate(cfg),
            spawn=lambda coro: self.tasks.append(asyncio.ensure_future(coro)),
            count=lambda ch, res: self.counts.__setitem__(
                (ch, res), self.counts.get((ch, res), 0) + 1
            ),
        )

    async def done(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self.tasks), 30)


async def test_email_with_login(smtp_plain: tuple[Sink, int], tmp_path: Path) -> None:
    sink, port = smtp_plain
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    h = Harness(
        {
            "email": [
                {
                    "name": "mail",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "username": "heartbeat",
                    "password_file": str(pw),
                    "from": "hb@example.org",
                    "to": ["ops@example.org", "b@example.org"],
                }
            ]
        }
    )
    h.notifier.notify(EVENT)
    await h.done()
    assert h.counts == {("mail", "sent"): 1}
    [(sender, rcpts, content)] = sink.messages
    assert sender == "hb@example.org" and rcpts == ["ops@example.org", "b@example.org"]
    text = content.decode()
    assert "Subject: [llm-heartbeat] recovery exhausted: vllm" in text
    assert "manual intervention required" in text
    assert PASSWORD not in text


async def test_email_wrong_password_fails_and_is_counted(
    smtp_plain: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sink, port = smtp_plain
    monkeypatch.setenv("SMTP_PW", "wrong-" + PASSWORD)
    h = Harness(
        {
            "retries": 1,
            "retry_delay": 0,
            "email": [
                {
                    "name": "mail",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "username": "heartbeat",
                    "password_env": "SMTP_PW",
                    "from": "hb@example.org",
                    "to": ["ops@example.org"],
                }
            ],
        }
    )
    h.notifier.notify(EVENT)
    await h.done()
    assert h.counts == {("mail", "failed"): 1}
    assert sink.messages == []
    assert PASSWORD not in caplog.text
    assert "SMTPAuthenticationError" in caplog.text


async def test_email_starttls(tls_files: tuple[Path, Path]) -> None:
    import ssl

    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    sink = Sink()
    port = free_port()
    ctl = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=authenticator,
    )
    ctl.start()
    try:
        pw = cert.parent / "pw"
        pw.write_text(PASSWORD)
        h = Harness(
            {
                "email": [
                    {
                        "name": "tls",
                        "host": "127.0.0.1",
                        "port": port,
                        "security": "starttls",
                        "ca_file": str(cert),
                        "username": "heartbeat",
                        "password_file": str(pw),
                        "from": "hb@example.org",
                        "to": ["ops@example.org"],
                    }
                ]
            }
        )
        h.notifier.notify(EVENT)
        await h.done()
    finally:
        ctl.stop()
    assert h.counts == {("tls", "sent"): 1}
    assert len(sink.messages) == 1


async def test_webhooks_json_and_slack() -> None:
    received: list[Seen] = []

    def ok(seen: Seen) -> web.Response:
        received.append(seen)
        return web.Response(status=200)

    async with stub_server(ok) as stub:
        h = Harness(
            {
                "webhooks": [
                    {"name": "generic", "url": stub.url + "/generic", "headers": {"X-Team": "llm"}},
                    {"name": "slack", "url": stub.url + "/slack", "format": "slack"},
                ]
            }
        )
        h.notifier.notify(EVENT)
        await h.done()
    by_path = {r.path: r for r in received}
    generic = json.loads(by_path["/generic"].body)
    assert generic["event"] == "exhausted" and generic["target"] == "vllm"
    assert "manual intervention required" in generic["message"]
    assert by_path["/generic"].headers["X-Team"] == "llm"
    slack = json.loads(by_path["/slack"].body)
    assert set(slack) == {"text"} and "manual intervention required" in slack["text"]
    assert h.counts == {("generic", "sent"): 1, ("slack", "sent"): 1}


async def test_failing_channel_is_retried_boundedly_and_others_still_deliver() -> None:
    hits: dict[str, int] = {}

    def respond(seen: Seen) -> web.Response:
        hits[seen.path] = hits.get(seen.path, 0) + 1
        return web.Response(status=500 if seen.path == "/bad" else 204)

    async with stub_server(respond) as stub:
        h = Harness(
            {
                "retries": 2,
                "retry_delay": 0.01,
                "webhooks": [
                    {"name": "bad", "url": stub.url + "/bad"},
                    {"name": "good", "url": stub.url + "/good"},
                    {"name": "dead", "url": f"http://127.0.0.1:{free_port()}/x", "timeout": 2},
                ],
            }
        )
        h.notifier.notify(EVENT)
        await h.done()
    assert hits == {"/bad": 3, "/good": 1}
    assert h.counts == {("bad", "failed"): 1, ("good", "sent"): 1, ("dead", "failed"): 1}


async def test_unselected_events_are_not_sent() -> None:
    async with stub_server(lambda s: web.Response()) as stub:
        h = Harness({"events": ["exhausted"], "webhooks": [{"name": "w", "url": stub.url}]})
        h.notifier.notify(RecoveryEvent(**{**EVENT.__dict__, "event": "started"}))
        assert h.tasks == []
        assert stub.requests == []


async def test_notifications_are_counted_in_metrics(tmp_path: Path) -> None:
    """Through the service: a dead channel never blocks the receiver; counts show up."""
    from tests.recovery.helpers import AUTH, FakeTargets, alert, make_config, payload, running

    cfg = make_config(
        tmp_path,
        notifications={
            "retries": 0,
            "webhooks": [{"name": "dead", "url": f"http://127.0.0.1:{free_port()}"}],
        },
    )
    async with running(cfg, FakeTargets()) as (svc, client, reg):
        reg_: CollectorRegistry = reg
        assert (
            reg_.get_sample_value(
                "llm_notifications_total", {"channel": "dead", "result": "failed"}
            )
            == 0
        )
        r = await client.post("/hooks/alertmanager", json=payload(alert()), headers=AUTH)
        assert r.status_code == 200
        await svc.drain()
        # started + failed (the fake target never comes back)
        assert (
            reg_.get_sample_value(
                "llm_notifications_total", {"channel": "dead", "result": "failed"}
            )
            == 2
        )
        assert (
            reg_.get_sample_value("llm_notifications_total", {"channel": "dead", "result": "sent"})
            == 0
        )
