"""Is a live server busy rather than broken? Read its queue length from its own /metrics.

A bounded read with a timeout: a huge or slow /metrics must not stall the receiver.
"""

from __future__ import annotations

import math

import httpx

from exporter.config.recovery import OverloadConfig
from exporter.recovery.ports import TargetCheck
from exporter.util.http import http_client

__all__ = ["fetch_queue_length", "overload_reason", "parse_gauge_sum"]


def parse_gauge_sum(text: str, name: str) -> float | None:
    """Sum of all samples of `name` in Prometheus text format; None if absent."""
    total: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith(name) or line.startswith("#"):
            continue
        rest = line[len(name) :]
        if rest[:1] == "{":
            end = rest.rfind("}")
            if end < 0:
                continue
            rest = rest[end + 1 :]
        elif rest[:1] not in (" ", "\t"):
            continue  # a longer metric name with the same prefix
        parts = rest.split()
        if not parts:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue
        if math.isfinite(value):
            total = (total or 0.0) + value
    return total


async def fetch_queue_length(base_url: str, cfg: OverloadConfig) -> float | None:
    """Read at most `metrics_max_bytes` of /metrics within `metrics_timeout`; None if unknown."""
    url = base_url.rstrip("/") + cfg.metrics_path
    data = bytearray()
    try:
        async with (
            http_client(timeout=cfg.metrics_timeout) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                return None
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) >= cfg.metrics_max_bytes:
                    del data[cfg.metrics_max_bytes :]
                    break
    except httpx.HTTPError:
        return None
    text = data.decode("utf-8", errors="replace")
    if len(data) >= cfg.metrics_max_bytes:
        text = text[: text.rfind("\n") + 1]  # drop the cut-off line
    return parse_gauge_sum(text, cfg.metric)


def overload_reason(check: TargetCheck, queue: float | None, cfg: OverloadConfig) -> str | None:
    """Why a restart would make things worse, or None. Only for a server that answers."""
    if not check.answering:
        return None
    if queue is not None and queue > cfg.queue_threshold:
        return f"{cfg.metric}={queue:g} > {cfg.queue_threshold:g}: busy, not broken"
    if (
        cfg.slow_chat_seconds is not None
        and check.chat_seconds is not None
        and check.chat_seconds >= cfg.slow_chat_seconds
        and check.state in ("degraded", "up")
    ):
        return f"answers slowly ({check.chat_seconds:.1f}s) but answers"
    return None
