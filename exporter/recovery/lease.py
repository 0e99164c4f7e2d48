"""The receivers' shared rails in a cluster: one Kubernetes Lease per target
(coordination.k8s.io/v1), its annotation holding the attempts ledger (recovery/shared.py).

Replicas in a cluster share no file, but they share the API server. A Lease is the object
Kubernetes itself uses for this (leader election, node heartbeats): an update names the
`resourceVersion` it read, and the API server refuses it (409 Conflict) if another receiver
wrote in between, so read-change-write is atomic; the loser reads again and decides again.
Token and CA as the `kubernetes` action (the pod's service account, re-read each time).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from exporter.config.recovery import SharedLease
from exporter.errors import SharedRailsError
from exporter.recovery.actions.kubernetes import api_base, namespace_of
from exporter.recovery.shared import Change, T
from exporter.util.http import http_client

__all__ = ["ATTEMPTS", "LeaseStore", "lease_name"]

ATTEMPTS = "llm-heartbeat.io/attempts"
TRIES = 5


def lease_name(prefix: str, target: str) -> str:
    """A valid object name for any target name: cleaned, plus a hash (no two targets share)."""
    clean = re.sub(r"[^a-z0-9-]+", "-", target.lower()).strip("-")[:40] or "target"
    digest = hashlib.sha256(target.encode()).hexdigest()[:10]
    return f"{prefix}-{clean}-{digest}"


class LeaseStore:
    """`shared.Store` over Leases: optimistic concurrency, a conflict re-reads."""

    def __init__(self, cfg: SharedLease, owner: str = "llm-heartbeat") -> None:
        self.cfg, self.owner = cfg, owner

    async def update(self, target: str, change: Change[T]) -> T:
        import httpx  # with the first recovery: not at start

        try:
            base, namespace = api_base(self.cfg), namespace_of(self.cfg)
        except RuntimeError as exc:
            raise SharedRailsError(f"rails.shared_lease: {exc}") from None
        name = lease_name(self.cfg.name_prefix, target)
        leases = f"{base}/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}/leases"
        ca = self.cfg.ca_file if base.startswith("https://") and self.cfg.ca_file else None
        try:
            async with http_client(
                ca_file=ca if ca and ca.exists() else None, timeout=self.cfg.timeout
            ) as client:
                for _ in range(TRIES):
                    headers = self._headers()
                    got = await client.get(f"{leases}/{name}", headers=headers)
                    if got.status_code == 404:
                        lease: dict[str, Any] | None = None
                    elif got.status_code == 200:
                        lease = got.json()
                    else:
                        raise SharedRailsError(
                            f"reading Lease {namespace}/{name}: HTTP {got.status_code}"
                        )
                    entries = _entries(lease)
                    result = change(entries)
                    body = self._body(name, namespace, lease, entries)
                    if lease is None:
                        put = await client.post(leases, headers=headers, json=body)
                    else:
                        put = await client.put(f"{leases}/{name}", headers=headers, json=body)
                    if put.status_code in (200, 201):
                        return result
                    if put.status_code != 409:  # 409: another receiver wrote first: again
                        raise SharedRailsError(
                            f"writing Lease {namespace}/{name}: HTTP {put.status_code}"
                        )
        except httpx.HTTPError as exc:
            raise SharedRailsError(f"Kubernetes API: {type(exc).__name__}") from None
        except ValueError:
            raise SharedRailsError(f"Lease {namespace}/{name} is not JSON") from None
        raise SharedRailsError(f"Lease {namespace}/{name}: {TRIES} conflicts in a row")

    def _headers(self) -> dict[str, str]:
        try:
            token = self.cfg.token_file.read_text().strip()
        except OSError:
            token = ""
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _body(
        self, name: str, namespace: str, lease: dict[str, Any] | None, entries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "llm-heartbeat",
                "app.kubernetes.io/component": "recovery",
            },
            "annotations": {ATTEMPTS: json.dumps(entries, separators=(",", ":"))},
        }
        if lease is not None:
            meta["resourceVersion"] = str((lease.get("metadata") or {}).get("resourceVersion", ""))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {"holderIdentity": self.owner, "renewTime": now},
        }


def _entries(lease: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ledger in the Lease's annotation; missing or damaged: empty (the rails start over)."""
    if lease is None:
        return []
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    try:
        data = json.loads(annotations.get(ATTEMPTS) or "[]")
    except (ValueError, TypeError):
        return []
    if not isinstance(data, list):
        return []
    return [e for e in data if isinstance(e, dict) and isinstance(e.get("started_at"), float | int)]
