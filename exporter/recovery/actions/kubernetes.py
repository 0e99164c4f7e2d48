"""The `kubernetes` action: rollout-restart a Deployment like `kubectl rollout restart` does.

It patches spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] with a
strategic-merge patch, using the pod's service account (token, CA, KUBERNETES_SERVICE_HOST/PORT)
unless `api_url`/`token_file`/`ca_file` say otherwise. The token is re-read on every call
because projected service-account tokens rotate.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from exporter.config.recovery import KubernetesAction, SharedLease
from exporter.recovery.actions.base import ActionContext, ActionResult, api_message
from exporter.util.http import http_client

if TYPE_CHECKING:  # httpx is imported where a client is made: not at start (~3 MiB)
    pass

__all__ = ["api_base", "namespace_of", "restart_patch", "run_kubernetes"]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def restart_patch(now: datetime) -> dict[str, Any]:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def api_base(cfg: KubernetesAction | SharedLease) -> str:
    """The API server: configured, or the pod's own (KUBERNETES_SERVICE_HOST/PORT)."""
    if cfg.api_url:
        return cfg.api_url.rstrip("/")
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise RuntimeError("not in a cluster: KUBERNETES_SERVICE_HOST is unset and no api_url")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"


def namespace_of(cfg: KubernetesAction | SharedLease) -> str:
    """The namespace: configured, or the pod's own (its service account's)."""
    if cfg.namespace:
        return cfg.namespace
    try:
        return cfg.namespace_file.read_text().strip()
    except OSError as exc:
        raise RuntimeError(f"no namespace configured and {cfg.namespace_file} unreadable") from exc


async def run_kubernetes(cfg: KubernetesAction, ctx: ActionContext) -> ActionResult:
    try:
        base = api_base(cfg)
        namespace = namespace_of(cfg)
    except RuntimeError as exc:
        return ActionResult(False, str(exc))
    headers = {"Content-Type": "application/strategic-merge-patch+json"}
    try:
        token = cfg.token_file.read_text().strip()
    except OSError:
        token = ""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    ca_file = None
    if base.startswith("https://") and cfg.ca_file is not None and cfg.ca_file.exists():
        ca_file = cfg.ca_file
    url = (
        f"{base}/apis/apps/v1/namespaces/{quote(namespace, safe='')}"
        f"/deployments/{quote(cfg.deployment, safe='')}"
    )
    import httpx  # with the first action: not at start

    try:
        async with http_client(ca_file=ca_file, timeout=cfg.timeout) as client:
            response = await client.patch(
                url, headers=headers, json=restart_patch(datetime.now(UTC))
            )
    except httpx.HTTPError as exc:
        return ActionResult(False, f"kubernetes API: {type(exc).__name__}")
    if response.status_code == 200:
        return ActionResult(True, f"deployment {namespace}/{cfg.deployment} restart requested")
    return ActionResult(
        False, f"kubernetes API answered {response.status_code}: {api_message(response)}"
    )
