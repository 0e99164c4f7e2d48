"""Where the humans are, in a test: an SMTP sink and an HTTP recorder, both on loopback.

`HttpRecorder` can also relay: Alertmanager posts the recovery webhook to the recorder, which
notes the arrival time and forwards it to the exporter. That gives the benchmark its
"webhook received" moment and the tests a list of every webhook Alertmanager sent.
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["HttpRecorder", "Mail", "Posted", "SmtpSink", "alert_sections"]


@dataclass(frozen=True)
class Mail:
    """One delivered message: when, to whom, subject and the decoded text of every part."""

    at: float
    rcpt: tuple[str, ...]
    subject: str
    text: str

    def firing(self) -> set[str]:
        return alert_sections(self.text)["firing"]

    def resolved(self) -> set[str]:
        return alert_sections(self.text)["resolved"]


_SECTION = re.compile(r"\[\d+\]\s+(Firing|Resolved)\b|alertname\s*=\s*([A-Za-z0-9_:]+)")


def alert_sections(body: str) -> dict[str, set[str]]:
    """Alert names under "[N] Firing" and "[N] Resolved" in Alertmanager's default email
    (HTML): a group's mail lists both, so "resolved" is read per alert, not from the subject."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", body))
    out: dict[str, set[str]] = {"firing": set(), "resolved": set()}
    section: str | None = None
    for m in _SECTION.finditer(text):
        if m.group(1):
            section = m.group(1).lower()
        elif section is not None:
            out[section].add(m.group(2))
    return out


def _decoded_text(msg: EmailMessage) -> str:
    parts = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            try:
                parts.append(str(part.get_content()))
            except (LookupError, ValueError):
                payload = part.get_payload(decode=True)
                parts.append(payload.decode(errors="replace") if isinstance(payload, bytes) else "")
    return "\n".join(parts)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        mail = Mail(
            at=time.time(),
            rcpt=tuple(envelope.rcpt_tos),
            subject=str(msg.get("Subject", "")),
            text=_decoded_text(msg),
        )
        with self.sink.lock:
            self.sink.mails.append(mail)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server that accepts everything (no TLS, no auth) and keeps the mails."""

    def __init__(self, port: int) -> None:
        self.mails: list[Mail] = []
        self.lock = threading.Lock()
        # aiosmtpd connects to its own port to check it is up, so it needs a real port number
        self.port = port
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def snapshot(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)


@dataclass(frozen=True)
class Posted:
    """One request the recorder received (and, when relaying, what the upstream answered)."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class HttpRecorder:
    """Records every POST; with `forward_to`, relays it there and answers what upstream said."""

    def __init__(self, forward_to: str | None = None) -> None:
        self.forward_to = forward_to.rstrip("/") if forward_to else None
        self.posts: list[Posted] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                at = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer = recorder._relay(self.path, dict(self.headers.items()), body)
                with recorder.lock:
                    recorder.posts.append(
                        Posted(at, self.path, dict(self.headers.items()), body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler

    def _relay(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self.forward_to is None:
            return 200, b'{"status":"ok"}'
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type")}
        req = urllib.request.Request(self.forward_to + path, data=body, headers=keep, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 502, b'{"error":"upstream unreachable"}'

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def snapshot(self) -> list[Posted]:
        with self.lock:
            return list(self.posts)
