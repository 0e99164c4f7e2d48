"""Docker (unix socket), Kubernetes and HTTP actions against local stand-ins of their APIs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from exporter.config.recovery import DockerAction, HttpAction, KubernetesAction
from exporter.recovery.actions import ActionContext, run_action
from exporter.recovery.actions.kubernetes import RESTARTED_AT, api_base
from tests.recovery.servers import Seen, stub_server

CTX = ActionContext(
    target="vllm",
    target_url="http://127.0.0.1:8000",
    rule="r",
    alertname="LLMTargetDown",
    fingerprint="f",
    starts_at="2025-01-01T00:00:00+00:00",
    labels={"container": "evil", "deployment": "evil"},
)


def docker_api(seen: Seen) -> web.Response:
    if seen.path.endswith("/containers/vllm-qwen/restart"):
        return web.Response(status=204)
    return web.json_response({"message": "No such container: x"}, status=404)


async def test_docker_restart_over_the_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    async with stub_server(docker_api, uds=sock) as stub:
        cfg = DockerAction(container="vllm-qwen", socket=sock, stop_timeout=15)
        result = await run_action(cfg, CTX)
        assert result.ok, result.detail
        [req] = stub.requests
        assert (req.method, req.path, req.query) == (
            "POST",
            "/v1.43/containers/vllm-qwen/restart",
            {"t": "15"},
        )
        unversioned = DockerAction(container="vllm-qwen", socket=sock, api_version=None)
        assert (await run_action(unversioned, CTX)).ok
        assert stub.requests[-1].path == "/containers/vllm-qwen/restart"

        missing = await run_action(DockerAction(container="other", socket=sock), CTX)
        assert not missing.ok and "no such container" in missing.detail


async def test_docker_daemon_errors_and_absence(tmp_path: Path) -> None:
    sock = tmp_path / "d.sock"
    async with stub_server(
        lambda s: web.json_response({"message": "cannot restart: busy"}, status=500), uds=sock
    ):
        result = await run_action(DockerAction(container="c", socket=sock), CTX)
        assert not result.ok and "500" in result.detail and "busy" in result.detail
    result = await run_action(DockerAction(container="c", socket=tmp_path / "none.sock"), CTX)
    assert not result.ok and "docker API" in result.detail


async def test_kubernetes_rollout_restart_patch(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("k8s-token-xyz\n")

    def api(seen: Seen) -> web.Response:
        if seen.method == "PATCH":
            return web.json_response({"kind": "Deployment"})
        return web.json_response({"kind": "Status", "message": "nope"}, status=405)

    async with stub_server(api) as stub:
        cfg = KubernetesAction(
            deployment="vllm", namespace="llm", api_url=stub.url, token_file=token, ca_file=None
        )
        before = datetime.now(UTC).replace(microsecond=0)
        result = await run_action(cfg, CTX)
        assert result.ok, result.detail
        [req] = stub.requests
        assert req.method == "PATCH"
        assert req.path == "/apis/apps/v1/namespaces/llm/deployments/vllm"
        assert req.headers["Content-Type"] == "application/strategic-merge-patch+json"
        assert req.headers["Authorization"] == "Bearer k8s-token-xyz"
        body = json.loads(req.body)
        stamp = body["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
        assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) >= before
        assert set(body) == {"spec"}


async def test_kubernetes_errors_and_namespace_file(tmp_path: Path) -> None:
    ns = tmp_path / "namespace"
    ns.write_text("from-file\n")

    def forbidden(seen: Seen) -> web.Response:
        return web.json_response(
            {"kind": "Status", "message": 'deployments.apps "vllm" is forbidden'}, status=403
        )

    async with stub_server(forbidden) as stub:
        cfg = KubernetesAction(
            deployment="vllm",
            api_url=stub.url,
            token_file=tmp_path / "none",
            namespace_file=ns,
            ca_file=None,
        )
        result = await run_action(cfg, CTX)
        assert not result.ok and "403" in result.detail and "forbidden" in result.detail
        assert stub.requests[0].path == "/apis/apps/v1/namespaces/from-file/deployments/vllm"
        assert "Authorization" not in stub.requests[0].headers


def test_in_clusterapi_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    assert api_base(KubernetesAction(deployment="d")) == "https://10.0.0.1:6443"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    assert api_base(KubernetesAction(deployment="d")) == "https://[fd00::1]:6443"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(RuntimeError, match="not in a cluster"):
        api_base(KubernetesAction(deployment="d"))


async def test_http_action_with_secret_header_file(tmp_path: Path) -> None:
    secret = tmp_path / "orch-token"
    secret.write_text("Bearer orch-secret\n")
    statuses = iter([202, 503])

    def orch(seen: Seen) -> web.Response:
        return web.Response(status=next(statuses))

    async with stub_server(orch) as stub:
        cfg = HttpAction(
            url=stub.url + "/api/restart/vllm",
            method="PUT",
            headers={"X-Source": "hb"},
            header_files={"Authorization": secret},
            body='{"reason":"llm-heartbeat"}',
        )
        result = await run_action(cfg, CTX)
        assert result.ok, result.detail
        req = stub.requests[0]
        assert (req.method, req.path) == ("PUT", "/api/restart/vllm")
        assert req.headers["Authorization"] == "Bearer orch-secret"
        assert req.headers["X-Source"] == "hb"
        assert req.body == b'{"reason":"llm-heartbeat"}'
        failed = await run_action(cfg, CTX)
        assert not failed.ok and "503" in failed.detail
        assert "orch-secret" not in failed.detail


async def test_actions_are_driven_end_to_end_by_an_alert(tmp_path: Path) -> None:
    """Alert -> docker rule -> the socket stand-in sees exactly one restart of the configured name."""
    from tests.recovery.helpers import (
        AUTH,
        DOWN,
        UP,
        FakeTargets,
        alert,
        make_config,
        payload,
        running,
    )

    sock = tmp_path / "docker.sock"
    async with stub_server(docker_api, uds=sock) as stub:
        rules: list[dict[str, Any]] = [
            {
                "name": "docker",
                "action": {"type": "docker", "container": "vllm-qwen", "socket": str(sock)},
            }
        ]
        targets = FakeTargets()
        targets.checker = lambda n: UP if targets.graces else DOWN
        async with running(make_config(tmp_path, rules=rules), targets) as (svc, client, reg):
            body = payload(alert(container="evil"))
            await client.post("/hooks/alertmanager", json=body, headers=AUTH)
            await svc.drain()
            assert (
                reg.get_sample_value(
                    "llm_recovery_attempts_total",
                    {"target": "vllm", "action": "docker", "result": "success"},
                )
                == 1
            )
        assert [r.path for r in stub.requests] == ["/v1.43/containers/vllm-qwen/restart"]
