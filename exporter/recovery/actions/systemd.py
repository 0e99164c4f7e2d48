"""The `systemd` action: `systemctl [--user] restart UNIT`, the unit from config only."""

from __future__ import annotations

import os

from exporter.config.recovery import SystemdAction
from exporter.recovery.actions.base import ActionContext, ActionResult
from exporter.recovery.actions.process import run_argv

__all__ = ["run_systemd", "systemd_argv"]

_INHERIT = ("PATH", "HOME", "LANG", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")


def systemd_argv(cfg: SystemdAction) -> list[str]:
    return [cfg.systemctl, *(["--user"] if cfg.user else []), "restart", "--", cfg.unit]


async def run_systemd(cfg: SystemdAction, ctx: ActionContext) -> ActionResult:
    env = {k: os.environ[k] for k in _INHERIT if k in os.environ}
    return await run_argv(systemd_argv(cfg), env=env, timeout=cfg.timeout, max_output_bytes=4096)
