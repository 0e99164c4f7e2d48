"""deploy/kubernetes/: every manifest valid against the Kubernetes schemas (offline, from
kubernetes-validate), the CRDs checked structurally, the generated files identical to their
sources (prometheus/rules/, grafana/dashboards/, deployment.yaml), and the pieces consistent
with each other and with the exporter."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from exporter.config import Settings, load_config
from exporter.engine.monitor import Monitor
from exporter.server.app import create_app
from tests.conftest import found, require_binary

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "kubernetes"
VERSIONS = ["1.28.0", kubernetes_validate.latest_version()]
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "Probe"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generator()


def manifests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in found(K8S.rglob("*.yaml"), f"manifests in {K8S}"):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                out.append((str(path.relative_to(K8S)), doc))
    return out


def find(kind: str, name: str | None = None, path: str | None = None) -> dict[str, Any]:
    hits = [
        d
        for p, d in manifests()
        if d.get("kind") == kind
        and (name is None or d["metadata"]["name"] == name)
        and (path is None or p == path)
    ]
    assert len(hits) == 1, f"{kind} {name}: {len(hits)} found"
    return hits[0]


ALL = manifests()


# ---- generated files -------------------------------------------------------------------------
def test_generated_files_are_up_to_date() -> None:
    assert generate.stale() == [], "run: python deploy/kubernetes/generate.py"


def test_generator_check_mode_detects_drift(tmp_path: Path) -> None:
    """The check is not vacuous: a changed rule file makes prometheusrule.yaml stale."""
    for sub in ("prometheus", "grafana/dashboards", "deploy/kubernetes"):
        shutil.copytree(REPO / sub, tmp_path / sub)
    assert generate.stale(tmp_path) == []
    rules = sorted((tmp_path / "prometheus" / "rules").glob("*.yml"))[0]
    text = rules.read_text()
    assert "\n        for: " in text
    rules.write_text(text.replace("\n        for: ", "\n        for: 1", 1))
    assert generate.stale(tmp_path) == ["deploy/kubernetes/prometheusrule.yaml"]
    dashboard = sorted((tmp_path / "grafana" / "dashboards").rglob("*.json"))[0]
    dashboard.write_text(dashboard.read_text() + " ")
    assert len(generate.stale(tmp_path)) == 2


def test_prometheusrule_equals_the_rule_files() -> None:
    rule = find("PrometheusRule", "llm-heartbeat")
    files = generate.rule_files()
    assert any(p.parent.name == "rules" for p in files)
    expected = [g for p in files for g in (yaml.safe_load(p.read_text()) or {})["groups"]]
    assert rule["spec"]["groups"] == expected
    names = [g["name"] for g in expected]
    assert len(names) == len(set(names)), "group names must be unique in one PrometheusRule"
    # the default profile is what prometheus.yml loads; the fast profile is not mixed in
    assert not any("fast" in p.parts for p in files)


def test_prometheusrule_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rule = find("PrometheusRule", "llm-heartbeat")
    out = tmp_path / "rules.yml"
    out.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_configmaps_carry_the_dashboards() -> None:
    sources = found((REPO / "grafana" / "dashboards").rglob("*.json"), "dashboards")
    cms = [d for p, d in ALL if p.startswith("dashboards/")]
    assert len(cms) == len(sources)
    by_key = {k: v for cm in cms for k, v in cm["data"].items()}
    for src in sources:
        assert json.loads(by_key[src.name]) == json.loads(src.read_text())
    for cm in cms:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert len(json.dumps(cm)) < 900_000, "ConfigMaps are limited to 1 MiB"


def test_statefulset_is_the_deployment_plus_shard_env() -> None:
    dep = find("Deployment", "llm-heartbeat")
    sts = find("StatefulSet", "llm-heartbeat")
    dep_pod, sts_pod = dep["spec"]["template"], sts["spec"]["template"]
    env = {e["name"]: e for e in sts_pod["spec"]["containers"][0].pop("env")}
    assert dep_pod == sts_pod
    assert int(env["LLM_HEARTBEAT_SHARDING__COUNT"]["value"]) == sts["spec"]["replicas"] > 1
    field = env["LLM_HEARTBEAT_SHARDING__INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']"


# ---- schemas ---------------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("path", "doc"),
    [(p, d) for p, d in ALL if d["kind"] not in CRD_KINDS | {"Kustomization"}],
    ids=lambda v: v if isinstance(v, str) else v.get("kind"),
)
def test_manifest_matches_kubernetes_schema(path: str, doc: dict, version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_schema_validation_is_not_vacuous() -> None:
    doc = find("Deployment", "llm-heartbeat")
    broken = json.loads(json.dumps(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def _check_keys(obj: dict, allowed: set[str], required: set[str], where: str) -> None:
    assert required <= obj.keys(), f"{where}: missing {required - obj.keys()}"
    assert obj.keys() <= allowed, f"{where}: unknown {obj.keys() - allowed}"


def _metadata(doc: dict) -> None:
    _check_keys(
        doc,
        {"apiVersion", "kind", "metadata", "spec"},
        {"apiVersion", "kind", "metadata", "spec"},
        doc["kind"],
    )
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", doc["metadata"]["name"])
    assert all(isinstance(v, str) for v in doc["metadata"].get("labels", {}).values())


def test_servicemonitor_structure_and_wiring() -> None:
    sm = find("ServiceMonitor")
    _metadata(sm)
    svc = find("Service", "llm-heartbeat")
    _check_keys(
        sm["spec"],
        {"selector", "namespaceSelector", "endpoints", "jobLabel"},
        {"selector", "endpoints"},
        "ServiceMonitor.spec",
    )
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert svc["metadata"]["namespace"] in sm["spec"]["namespaceSelector"]["matchNames"]
    ports = {p["name"] for p in svc["spec"]["ports"]}
    for ep in sm["spec"]["endpoints"]:
        _check_keys(
            ep, {"port", "path", "interval", "scrapeTimeout", "scheme"}, {"port"}, "endpoint"
        )
        assert ep["port"] in ports and ep.get("path", "/metrics") == "/metrics"
        assert DURATION.match(ep["interval"]) and DURATION.match(ep["scrapeTimeout"])
    # the Operator names the job after the Service: the rules expect job="llm-heartbeat"
    rules_text = (K8S / "prometheusrule.yaml").read_text()
    assert f'job="{svc["metadata"]["name"]}"' in rules_text


def test_prometheusrule_structure() -> None:
    rule = find("PrometheusRule")
    _metadata(rule)
    _check_keys(rule["spec"], {"groups"}, {"groups"}, "PrometheusRule.spec")
    for group in rule["spec"]["groups"]:
        _check_keys(
            group,
            {"name", "interval", "rules", "limit", "partial_response_strategy"},
            {"name", "rules"},
            f"group {group.get('name')}",
        )
        for r in group["rules"]:
            _check_keys(
                r,
                {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"},
                {"expr"},
                f"rule in {group['name']}",
            )
            assert ("alert" in r) != ("record" in r)
            assert isinstance(r["expr"], str | int)
            if "for" in r:
                assert DURATION.match(r["for"])


def test_probe_example_structure(tmp_path: Path) -> None:
    probe = find("Probe")
    _metadata(probe)
    spec = probe["spec"]
    _check_keys(
        spec,
        {"jobName", "module", "interval", "scrapeTimeout", "prober", "targets"},
        {"prober", "targets", "module"},
        "Probe.spec",
    )
    assert spec["prober"]["path"] == "/probe"
    svc = find("Service", "llm-heartbeat")
    host, port = spec["prober"]["url"].rsplit(":", 1)
    assert host == f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc"
    assert int(port) == svc["spec"]["ports"][0]["port"]
    settings = configmap_settings(tmp_path)
    assert spec["module"] in settings.probe.modules
    from exporter.server.probe_endpoint import is_allowed

    for target in spec["targets"]["staticConfig"]["static"]:
        assert is_allowed(f"http://{target}", settings.probe.allowed_targets)


def test_kustomizations_list_existing_files() -> None:
    for path, doc in ALL:
        if doc["kind"] != "Kustomization":
            continue
        base = (K8S / path).parent
        for res in doc["resources"]:
            assert (base / res).exists(), f"{path}: {res} does not exist"
    top = find("Kustomization", path="kustomization.yaml")
    listed = set(top["resources"])
    for p, _ in ALL:
        if ("/" not in p or p.startswith("dashboards/")) and p != "kustomization.yaml":
            assert p in listed, f"{p} is not in kustomization.yaml"
    assert not any(r.startswith("examples/") for r in listed)


# ---- consistency with the exporter -----------------------------------------------------------
def configmap_settings(tmp: Path) -> Settings:
    """The exporter's own loader reads the config the ConfigMap carries."""
    out = tmp / "config.yml"
    out.write_text(find("ConfigMap", "llm-heartbeat-config")["data"]["config.yml"])
    return load_config(out)


def test_configmap_config_is_valid(tmp_path: Path) -> None:
    settings = configmap_settings(tmp_path)
    dep = find("Deployment", "llm-heartbeat")
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:2] == ["run", "--config"]
    config_path = Path(container["args"][2])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["config"] == str(config_path.parent)
    assert volumes["config"]["configMap"]["name"] == "llm-heartbeat-config"
    assert settings.listen_port == container["ports"][0]["containerPort"] == 8001
    # secrets: files in the mounted Secret, keys the example Secret defines
    secret = find("Secret", "llm-heartbeat-secrets")
    assert volumes["secrets"]["secret"]["secretName"] == secret["metadata"]["name"]
    secret_dir = Path(mounts["secrets"])
    files = [t.api_key_file for t in settings.targets]
    files += [m.api_key_file for m in settings.probe.modules.values()]
    files.append(settings.recovery.auth.token_file)
    for f in files:
        assert f is not None and f.parent == secret_dir and f.name in secret["stringData"]
    # the history file lives on the writable emptyDir
    assert settings.history_file is not None
    assert settings.history_file.parent == Path(mounts["data"]) and "emptyDir" in volumes["data"]


def test_deployment_is_hardened_and_probes_real_endpoints() -> None:
    dep = find("Deployment", "llm-heartbeat")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert (
        pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    )
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
    assert c["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert c["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    app = create_app(Monitor(Settings(history_file=None)), registry=None)  # type: ignore[arg-type]
    paths = {getattr(r, "path", None) for r in app.routes}
    assert {"/-/healthy", "/-/ready", "/metrics"} <= paths
    svc = find("Service", "llm-heartbeat")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["targetPort"] == c["ports"][0]["name"]


def test_rbac_allows_only_patching_deployments_in_named_namespaces(tmp_path: Path) -> None:
    assert not [d for _, d in ALL if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    roles = [d for _, d in ALL if d["kind"] == "Role"]
    bindings = [d for _, d in ALL if d["kind"] == "RoleBinding"]
    assert roles and len(roles) == len(bindings)
    sa = find("ServiceAccount", "llm-heartbeat")
    dep = find("Deployment", "llm-heartbeat")
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    restart = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}]
    # the replicas' shared rails (docs/ha.md): Leases, in the exporter's own namespace only
    leases = [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    for role in roles:
        if role["metadata"]["name"] == "llm-heartbeat-rails":
            assert role["rules"] == leases
            assert role["metadata"]["namespace"] == sa["metadata"]["namespace"]
        else:
            assert role["rules"] == restart
    for binding in bindings:
        role = next(r for r in roles if r["metadata"]["name"] == binding["roleRef"]["name"])
        assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": sa["metadata"]["name"],
                "namespace": sa["metadata"]["namespace"],
            }
        ]
    # the recovery rules restart Deployments only where the Role allows it
    settings = configmap_settings(tmp_path)
    allowed = {r["metadata"]["namespace"] for r in roles if r["rules"] == restart}
    actions = [r.action for r in settings.recovery.rules if r.action.type == "kubernetes"]
    assert actions and all(a.namespace in allowed for a in actions)


# ---- two replicas (docs/ha.md) -------------------------------------------------------------
HA = REPO / "deploy" / "ha" / "kubernetes"


def test_the_ha_overlay_runs_two_replicas_on_two_nodes_that_share_their_rails(
    tmp_path: Path,
) -> None:
    kustomization = yaml.safe_load((HA / "kustomization.yaml").read_text())
    assert kustomization["resources"][0] == "../../kubernetes"  # the base, not a copy
    assert (HA / kustomization["resources"][0]).resolve() == K8S.resolve()
    patch = yaml.safe_load(kustomization["patches"][0]["patch"])
    dep = find("Deployment", "llm-heartbeat")
    assert patch["kind"] == "Deployment" and patch["metadata"]["name"] == dep["metadata"]["name"]
    assert patch["spec"]["replicas"] == 2
    anti = patch["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["requiredDuringSchedulingIgnoredDuringExecution"][0]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    pdb = yaml.safe_load((HA / "poddisruptionbudget.yaml").read_text())
    for version in VERSIONS:
        kubernetes_validate.validate(pdb, version, strict=True)
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["metadata"]["namespace"] == dep["metadata"]["namespace"]
    # the base's receivers already share their rails through Leases they may write
    rails = configmap_settings(tmp_path).recovery.rails
    assert rails.shared_lease is not None and rails.shared_file is None
    role = find("Role", "llm-heartbeat-rails")
    assert role["metadata"]["namespace"] == dep["metadata"]["namespace"]
