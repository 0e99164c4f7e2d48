"""What the probes share around the transport: the context a probe runs in, the request
headers, bounded reads, and the one place where transport exceptions become failure reasons."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from exporter.config import TargetConfig
from exporter.errors import (
    BadResponse,
    BodyTooLarge,
    ConnectFailed,
    ServerDisconnected,
    TransportError,
)
from exporter.probes.client import make_client
from exporter.probes.results import Reason
from exporter.probes.transport import ProbeResponse, Transport, timeouts
from exporter.util.http import USER_AGENT, read_capped

__all__ = [
    "REQUEST_ID",
    "USER_AGENT",
    "BodyTooLarge",
    "ProbeContext",
    "iter_bounded",
    "make_client",
    "map_exception",
    "read_bounded",
    "request_headers",
    "timeouts",
]


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Everything one probe needs: the transport, the target, the model to expect, the deadline,
    and what the target was found to be (probes/servers.py; None: not known yet)."""

    client: Transport
    target: TargetConfig
    timeout: float
    model: str | None = None
    server: str | None = None


REQUEST_ID = "X-Request-Id"


def request_headers(target: TargetConfig, *, auth: bool) -> dict[str, str]:
    """The target's headers, then what labels the request as synthetic (docs/probe-cost.md):
    the exporter's User-Agent and a request id of its own, so a server's logs and a gateway
    can tell (and drop) a probe from a user's request, and find one probe's lines."""
    headers = dict(target.headers)
    headers["User-Agent"] = USER_AGENT
    headers[REQUEST_ID] = f"llm-heartbeat-{uuid.uuid4().hex}"
    if auth:
        key = target.resolve_api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
    return headers


async def read_bounded(response: ProbeResponse, limit: int) -> bytes:
    """Read the body, refusing more than `limit` bytes (a declared or actual oversize)."""
    return await read_capped(response.iter_raw(), limit, response.headers.get("content-length"))


async def iter_bounded(response: ProbeResponse, limit: int) -> AsyncIterator[bytes]:
    """Yield raw chunks, raising BodyTooLarge once more than `limit` bytes arrived."""
    total = 0
    async for chunk in response.iter_raw():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(f"stream exceeds the {limit}-byte limit", limit)
        yield chunk


def map_exception(exc: BaseException, *, streaming: bool = False) -> tuple[Reason, str]:
    """Translate an exception of a probe into (reason, short detail). The only such place."""
    if isinstance(exc, BodyTooLarge):
        return Reason.BODY_TOO_LARGE, str(exc)
    if isinstance(exc, ConnectFailed):  # refused, unreachable, DNS, TLS
        return Reason.CONNECT_ERROR, _short(exc, "connection failed")
    if isinstance(exc, TimeoutError):  # the deadline, or the client's connect/read timeouts
        return Reason.TIMEOUT, _short(exc, "timed out")
    if isinstance(exc, ServerDisconnected):
        reason = Reason.STREAM_INCOMPLETE if streaming else Reason.INVALID_RESPONSE
        return reason, _short(exc, "connection closed by the server")
    if isinstance(exc, BadResponse):
        return Reason.INVALID_RESPONSE, _short(exc, "malformed HTTP response")
    if isinstance(exc, TransportError):  # e.g. an unusable URL or header
        return Reason.CONNECT_ERROR, _short(exc, "transport error")
    if isinstance(exc, UnicodeDecodeError):
        return Reason.INVALID_RESPONSE, "body is not valid UTF-8"
    return Reason.INVALID_RESPONSE, f"{type(exc).__name__}"


def _short(exc: BaseException, fallback: str) -> str:
    text = str(exc).strip() or fallback
    return f"{type(exc).__name__}: {text}"[:200]
