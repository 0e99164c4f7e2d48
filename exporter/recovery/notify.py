"""Recovery events to humans: email over SMTP and JSON/Slack webhooks (the seed's notifier).

Each delivery runs in its own background task with bounded retries; a failing channel is logged
and counted and never blocks or crashes the receiver. Passwords and secret headers are read at
send time (so rotation works) and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import sys
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import partial
from typing import TYPE_CHECKING, Any

from exporter.config.recovery import EmailChannel, NotificationsConfig, WebhookChannel
from exporter.errors import RecoveryConfigError
from exporter.util.http import http_client
from exporter.util.secrets import header_values, read_secret

if TYPE_CHECKING:  # httpx is imported where a client is made: not at start (~3 MiB)
    pass

__all__ = ["Notifier", "RecoveryEvent", "render_text"]

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], None]
Count = Callable[[str, str], None]


@dataclass(frozen=True)
class RecoveryEvent:
    """One of `outcomes.EventKind`: started, succeeded, failed, interrupted, exhausted."""

    event: str
    target: str
    rule: str
    action: str
    alertname: str
    detail: str
    timestamp: float


def render_text(ev: RecoveryEvent) -> str:
    when = datetime.fromtimestamp(ev.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = {
        "started": f"recovery started for target {ev.target}: {ev.action} (rule {ev.rule})",
        "succeeded": f"recovery succeeded for target {ev.target}: it answers again",
        "failed": f"recovery failed for target {ev.target}: {ev.action} did not bring it back",
        "interrupted": (
            f"recovery interrupted for target {ev.target}: the exporter stopped during "
            f"{ev.action}; check the target"
        ),
        "exhausted": (f"recovery exhausted for target {ev.target}: manual intervention required"),
    }.get(ev.event, f"recovery {ev.event} for target {ev.target}")
    lines = [head, f"alert: {ev.alertname}", f"time: {when}"]
    if ev.detail:
        lines.append(f"detail: {ev.detail[:1000]}")
    return "\n".join(lines)


def _send_email(ch: EmailChannel, ev: RecoveryEvent) -> None:
    """Blocking SMTP delivery (run in a thread)."""
    password = read_secret(
        ch.password_file, ch.password_env, f"email channel {ch.name}", RecoveryConfigError
    )
    msg = EmailMessage()
    msg["Subject"] = f"{ch.subject_prefix} recovery {ev.event}: {ev.target}"
    msg["From"] = ch.from_addr
    msg["To"] = ", ".join(ch.to)
    msg.set_content(render_text(ev))
    context = ssl.create_default_context(cafile=str(ch.ca_file) if ch.ca_file else None)
    smtp: smtplib.SMTP
    if ch.security == "ssl":
        smtp = smtplib.SMTP_SSL(ch.host, ch.port, timeout=ch.timeout, context=context)
    else:
        smtp = smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout)
    with smtp:
        if ch.security == "starttls":
            smtp.starttls(context=context)
        if ch.username and password is not None:
            smtp.login(ch.username, password)
        smtp.send_message(msg)


async def _post_webhook(ch: WebhookChannel, ev: RecoveryEvent) -> None:
    headers = header_values(ch.headers, ch.header_files)
    if ch.format == "slack":
        body: dict[str, Any] = {"text": render_text(ev)}
    else:
        body = {**asdict(ev), "message": render_text(ev), "source": "llm-heartbeat"}
    async with http_client(timeout=ch.timeout) as client:
        response = await client.post(ch.url, json=body, headers=headers)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"webhook answered {response.status_code}")


class Notifier:
    """Fan an event out to every channel, each in the background, with bounded retries."""

    def __init__(self, cfg: NotificationsConfig, *, spawn: Spawn, count: Count) -> None:
        self.cfg = cfg
        self._spawn = spawn
        self._count = count

    @property
    def channels(self) -> list[str]:
        return [c.name for c in self.cfg.email] + [c.name for c in self.cfg.webhooks]

    def notify(self, ev: RecoveryEvent) -> None:
        if ev.event not in self.cfg.events:
            return
        for em in self.cfg.email:
            self._spawn(self._deliver(em.name, ev, partial(asyncio.to_thread, _send_email, em, ev)))
        for wh in self.cfg.webhooks:
            self._spawn(self._deliver(wh.name, ev, partial(_post_webhook, wh, ev)))

    async def _deliver(
        self, channel: str, ev: RecoveryEvent, send: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        attempts = self.cfg.retries + 1
        for i in range(attempts):
            try:
                await send()
            except Exception as exc:  # any channel error is logged and counted, never raised
                why = _describe(exc)
                if i + 1 < attempts:
                    log.warning(
                        "notification %s via %s failed (%s), retrying", ev.event, channel, why
                    )
                    await asyncio.sleep(self.cfg.retry_delay * 2**i)
                    continue
                log.error(
                    "notification %s via %s failed after %d attempts: %s",
                    ev.event,
                    channel,
                    attempts,
                    why,
                )
                self._count(channel, "failed")
                return
            self._count(channel, "sent")
            log.info("notification %s for %s sent via %s", ev.event, ev.target, channel)
            return


def _describe(exc: Exception) -> str:
    """An error summary that cannot carry a secret (no URLs with credentials, no headers)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.smtp_code}"
    httpx = sys.modules.get("httpx")  # not imported: not an httpx error
    if isinstance(exc, OSError) or (httpx is not None and isinstance(exc, httpx.HTTPError)):
        return type(exc).__name__
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
