"""The `http` action: call an orchestrator's restart endpoint; secret headers come from files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exporter.config.recovery import HttpAction
from exporter.recovery.actions.base import ActionContext, ActionResult
from exporter.util.http import http_client
from exporter.util.secrets import header_values

if TYPE_CHECKING:  # httpx is imported where a client is made: not at start (~3 MiB)
    pass

__all__ = ["run_http"]


async def run_http(cfg: HttpAction, ctx: ActionContext) -> ActionResult:
    try:
        headers = header_values(cfg.headers, cfg.header_files)
    except OSError as exc:
        return ActionResult(
            False, f"cannot read a header file: {exc.strerror or type(exc).__name__}"
        )
    import httpx  # with the first action: not at start

    try:
        async with http_client(timeout=cfg.timeout) as client:
            response = await client.request(
                cfg.method,
                cfg.url,
                headers=headers,
                content=cfg.body.encode() if cfg.body is not None else None,
            )
    except httpx.HTTPError as exc:
        return ActionResult(False, f"{cfg.method} failed: {type(exc).__name__}")
    if 200 <= response.status_code < 300:
        return ActionResult(True, f"{cfg.method} answered {response.status_code}")
    return ActionResult(False, f"{cfg.method} answered {response.status_code}")
