"""Recovery actions, dispatched by the config's `type` like blackbox_exporter's prober map."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from exporter.recovery.actions.base import ActionContext, ActionResult
from exporter.recovery.actions.command import ENV_VARS, build_env, run_command
from exporter.recovery.actions.docker import run_docker
from exporter.recovery.actions.http import run_http
from exporter.recovery.actions.kubernetes import run_kubernetes
from exporter.recovery.actions.systemd import run_systemd

__all__ = ["ACTIONS", "ENV_VARS", "ActionContext", "ActionResult", "build_env", "run_action"]

ACTIONS: dict[str, Callable[[Any, ActionContext], Awaitable[ActionResult]]] = {
    "command": run_command,
    "systemd": run_systemd,
    "docker": run_docker,
    "kubernetes": run_kubernetes,
    "http": run_http,
}


async def run_action(cfg: Any, ctx: ActionContext) -> ActionResult:
    """Run the configured action; an unexpected exception becomes a failed result."""
    try:
        return await ACTIONS[cfg.type](cfg, ctx)
    except Exception as exc:  # an action must never take the receiver down
        return ActionResult(False, f"action error: {type(exc).__name__}")
