"""The `command` action: a configured argv; alert data only as fixed LLMHB_* variables.

Labels never name variables (a label `path` cannot set PATH) and never reach the command line.
The environment is minimal: the variables listed in `inherit_env`, the configured `env`, and
the LLMHB_* set below; nothing else of the exporter's environment (which may hold secrets).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from exporter.config.recovery import CommandAction
from exporter.recovery.actions.base import ActionContext, ActionResult
from exporter.recovery.actions.process import run_argv

__all__ = ["ENV_VARS", "build_env", "run_command"]

ENV_VARS = (
    "LLMHB_TARGET",
    "LLMHB_TARGET_URL",
    "LLMHB_RULE",
    "LLMHB_ALERTNAME",
    "LLMHB_FINGERPRINT",
    "LLMHB_STARTS_AT",
    "LLMHB_SEVERITY",
    "LLMHB_LABELS_JSON",
)
_MAX_VALUE = 4096


def _clean(value: str) -> str:
    return value.replace("\x00", "")[:_MAX_VALUE]


def build_env(cfg: CommandAction, ctx: ActionContext, parent: Mapping[str, str]) -> dict[str, str]:
    env = {name: parent[name] for name in cfg.inherit_env if name in parent}
    env.update(cfg.env)
    labels = json.dumps(ctx.labels, sort_keys=True, ensure_ascii=True)
    values = (
        ctx.target,
        ctx.target_url,
        ctx.rule,
        ctx.alertname,
        ctx.fingerprint,
        ctx.starts_at,
        ctx.labels.get("severity", ""),
        labels if len(labels) <= _MAX_VALUE else "{}",
    )
    env.update({name: _clean(value) for name, value in zip(ENV_VARS, values, strict=True)})
    return env


async def run_command(cfg: CommandAction, ctx: ActionContext) -> ActionResult:
    return await run_argv(
        cfg.argv,
        env=build_env(cfg, ctx, os.environ),
        timeout=cfg.timeout,
        max_output_bytes=cfg.max_output_bytes,
        cwd=cfg.cwd,
    )
