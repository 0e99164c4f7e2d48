"""docker-compose.yml and Dockerfile, checked without Docker: structure and cross-references."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from exporter.config import load_config
from tests.monitoring.sources import ALERTMANAGER_DIR, PROMETHEUS_DIR, REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
EXPORTER_CONFIG = REPO / "deploy" / "compose" / "llm-heartbeat.yml"


def _hostnames() -> set[str]:
    names = set(SERVICES)
    for service in SERVICES.values():
        for net in (service.get("networks") or {}).values():
            names |= set((net or {}).get("aliases", []))
    return names


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        out.append((source, target))
    return out


def _container_path(service: str, path: str) -> tuple[str, str] | None:
    """(volume or host path, path inside it) of the mount that holds `path`."""
    for source, target in _mounts(SERVICES[service]):
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return source, path[len(target) :].lstrip("/")
    return None


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck(name: str) -> None:
    check = SERVICES[name].get("healthcheck")
    assert check and check.get("test"), f"{name}: no healthcheck"
    assert check["test"][0] in {"CMD", "CMD-SHELL"}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounts_exist_and_named_volumes_are_declared(name: str) -> None:
    declared = set(COMPOSE.get("volumes", {}))
    for source, _target in _mounts(SERVICES[name]):
        if source.startswith((".", "/")):
            assert (REPO / source).exists(), f"{name}: {source} does not exist"
        else:
            assert source in declared, f"{name}: volume {source} is not declared"


def test_depends_on_names_real_services() -> None:
    for name, service in SERVICES.items():
        for dep in service.get("depends_on", {}):
            assert dep in SERVICES, f"{name} depends on unknown {dep}"


def test_published_ports_are_loopback_only() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_default_runs_the_simulator_and_gpu_runs_vllm() -> None:
    env = (REPO / ".env").read_text(encoding="utf-8")
    assert re.search(r"^COMPOSE_PROFILES=sim$", env, flags=re.MULTILINE)
    sim, vllm = SERVICES["simulator"], SERVICES["vllm"]
    assert sim["profiles"] == ["sim"] and vllm["profiles"] == ["gpu"]
    assert sim["command"] == ["simulate", "--host", "0.0.0.0", "--port", "8000"]
    assert "vllm" in sim["networks"]["default"]["aliases"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert "Qwen/Qwen3-4B-Instruct-2507" in vllm["command"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    # Every other service runs in both cases.
    for name, service in SERVICES.items():
        if name not in {"simulator", "vllm"}:
            assert "profiles" not in service, name


def test_exporter_config_loads_and_its_target_and_secret_resolve() -> None:
    settings = load_config(EXPORTER_CONFIG)
    assert settings.listen_port == 8001
    target = settings.targets[0]
    host = urlsplit(str(target.url))
    assert host.hostname in _hostnames() and host.port == 8000
    assert target.model == "Qwen/Qwen3-4B-Instruct-2507"
    assert settings.recovery.enabled
    token = settings.recovery.auth.token_file
    assert token is not None
    exporter_mount = _container_path("llm-heartbeat", str(token))
    assert exporter_mount is not None
    assert _container_path("llm-heartbeat", "/etc/llm-heartbeat/llm-heartbeat.yml") == (
        "./deploy/compose/llm-heartbeat.yml",
        "",
    )
    # Alertmanager reads the same file from the same volume.
    am = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text(encoding="utf-8"))
    receivers = {r["name"]: r for r in am["receivers"]}
    hook = receivers["recovery-webhook"]["webhook_configs"][0]
    am_mount = _container_path(
        "alertmanager", hook["http_config"]["authorization"]["credentials_file"]
    )
    assert am_mount == exporter_mount
    assert exporter_mount[0] in SERVICES["secrets-init"]["volumes"][0]
    assert exporter_mount[1] in " ".join(SERVICES["secrets-init"]["command"])


def test_configs_point_at_compose_services_and_ports() -> None:
    hosts = _hostnames()
    for profile in ("prometheus.yml", "prometheus-fast.yml"):
        config = yaml.safe_load((PROMETHEUS_DIR / profile).read_text(encoding="utf-8"))
        addresses = [
            t
            for job in config["scrape_configs"]
            for sc in job["static_configs"]
            for t in sc["targets"]
        ]
        addresses += config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
        for address in addresses:
            host, port = address.rsplit(":", 1)
            assert host in hosts | {"localhost"}, address
            assert port.isdigit()
        assert (PROMETHEUS_DIR / profile).is_file()
    am = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text(encoding="utf-8"))
    assert am["global"]["smtp_smarthost"].split(":")[0] in hosts
    receivers = {r["name"]: r for r in am["receivers"]}
    url = urlsplit(receivers["recovery-webhook"]["webhook_configs"][0]["url"])
    assert url.hostname in hosts and url.port == 8001 and url.path == "/hooks/alertmanager"
    ds = yaml.safe_load(
        (REPO / "grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )
    assert urlsplit(ds["datasources"][0]["url"]).hostname in hosts
    prom_cmd = " ".join(SERVICES["prometheus"]["command"])
    assert "--config.file=/etc/prometheus/${PROMETHEUS_CONFIG:-prometheus.yml}" in prom_cmd
    assert _container_path("prometheus", "/etc/prometheus/prometheus.yml") == (
        "./prometheus",
        "prometheus.yml",
    )
    grafana_env = SERVICES["grafana"]["environment"]
    assert grafana_env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana_env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    home = grafana_env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    source, rest = _container_path("grafana", home) or ("", "")
    assert (REPO / source / rest).is_file()


def _dockerfile() -> list[str]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    return [line.strip() for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def test_dockerfile_is_small_non_root_and_healthchecked() -> None:
    lines = _dockerfile()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) == 2 and all("-slim" in f for f in froms)
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in {"0", "root"}
    assert any(line.startswith("HEALTHCHECK ") and "/-/healthy" in line for line in lines)
    assert any(line.startswith("EXPOSE 8001") for line in lines)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins ("!" re-includes)."""
    from fnmatch import fnmatch

    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if fnmatch(path, pat) or path.startswith(pat + "/"):
            ignored = not negate
    return ignored


def test_dockerfile_copies_only_existing_files_the_context_keeps() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for line in _dockerfile():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    assert _ignored("tests", patterns) and _ignored(".venv", patterns)


def test_compose_uses_the_local_image_for_exporter_and_simulator() -> None:
    for name in ("llm-heartbeat", "simulator"):
        assert SERVICES[name]["build"]["context"] == "."
        assert Path(REPO / SERVICES[name]["build"]["dockerfile"]).is_file()
