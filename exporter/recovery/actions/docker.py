"""The `docker` action: POST /containers/{name}/restart on the Engine API's unix socket."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from exporter.config.recovery import DockerAction
from exporter.recovery.actions.base import ActionContext, ActionResult, api_message
from exporter.util.http import http_client

if TYPE_CHECKING:  # httpx is imported where a client is made: not at start (~3 MiB)
    pass

__all__ = ["run_docker"]


async def run_docker(cfg: DockerAction, ctx: ActionContext) -> ActionResult:
    prefix = f"/{cfg.api_version}" if cfg.api_version else ""
    path = f"{prefix}/containers/{quote(cfg.container, safe='')}/restart"
    # The daemon waits up to t seconds for the container to stop before killing it.
    timeout = cfg.timeout if cfg.timeout is not None else cfg.stop_timeout + 30.0
    import httpx  # with the first action: not at start

    transport = httpx.AsyncHTTPTransport(uds=str(cfg.socket))
    try:
        async with http_client(
            transport=transport, base_url="http://docker", timeout=timeout
        ) as client:
            response = await client.post(path, params={"t": str(cfg.stop_timeout)})
    except httpx.HTTPError as exc:
        return ActionResult(False, f"docker API at {cfg.socket}: {type(exc).__name__}")
    if response.status_code == 204:
        return ActionResult(True, f"container {cfg.container} restarted")
    if response.status_code == 404:
        return ActionResult(False, f"no such container {cfg.container!r}")
    return ActionResult(
        False, f"docker API answered {response.status_code}: {api_message(response)}"
    )
