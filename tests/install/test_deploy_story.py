"""examples/llm-heartbeat.yml and deploy/systemd/README.md tell one story (issue 22): the
README's step 2 creates (keys, token, password) or installs from the operator's PKI (the TLS
target's CA, client certificate and key, issue 24) every secret file the example names, in
/etc/llm-heartbeat where the README says secrets go, and its `check-config` (secrets read, the
TLS files loaded as PEM) then passes; the example's restart action names the unit the README's
polkit rule allows."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.core.certs import make_pki

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llm-heartbeat.yml"
README = ROOT / "deploy" / "systemd" / "README.md"
ETC = "/etc/llm-heartbeat"
TLS_KINDS = {"ca_file", "cert_file", "key_file"}  # installed from the PKI, loaded as PEM
# install -m MODE -o OWNER -g GROUP SOURCE DEST (one file) or -d DIR... (directories)
INSTALL = re.compile(r"^sudo install -m (\d+) -o (\S+) -g (\S+) (\S+) (\S+)$")
INSTALL_DIRS = re.compile(r"^sudo install -d -m (\d+) -o (\S+) -g (\S+) ((?:\S+ ?)+)$")


def _step2() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## 2. Configure") : text.index("## 3. The unit")]
    return section[section.index("```sh") : section.index("```", section.index("```sh") + 5)]


def _secret_files(node: object, at: str = "") -> list[tuple[str, str]]:
    """(field path, file) for every `*_file` key but the history files the service writes."""
    out: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            field = f"{at}.{key}" if at else str(key)
            if str(key).endswith("_file") and key not in ("history_file", "log_file"):
                out.append((field, str(value)))
            else:
                out += _secret_files(value, field)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out += _secret_files(item, f"{at}[{i}]")
    return out


def _kind(field: str) -> str:
    return field.rsplit(".", 1)[-1]


def test_step_two_creates_every_secret_file_the_example_names_and_check_config_passes(
    tmp_path: Path,
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    named = _secret_files(yaml.safe_load(text))
    files = [path for _, path in named]
    assert files and len(set(files)) == len(files), files  # one file per field
    # the API keys, the webhook token, the SMTP password and the TLS target's three files
    assert {_kind(f) for f, _ in named} == {
        "api_key_file", "token_file", "password_file", *TLS_KINDS,
    }  # fmt: skip
    step = _step2()
    assert f"check-config {ETC}/llm-heartbeat.yml" in step and "--skip-secrets" not in step
    lines = [line.split("  #")[0].strip() for line in step.splitlines()]
    created_loop = re.search(r"for f in ([\w ]+); do", step)
    assert created_loop is not None
    loop_body = f"sudo install -m 0640 -o root -g llm-heartbeat /dev/null {ETC}/$f"
    assert loop_body in lines, "step 2's loop creates no file readable by the service's group"
    created = {f"{ETC}/{name}" for name in created_loop.group(1).split()}
    installed = {m[5]: m for m in map(INSTALL.match, lines) if m and m[4] != "/dev/null"}
    dirs = {d for m in map(INSTALL_DIRS.match, lines) if m for d in m[4].split()}
    assert ETC in dirs, "step 2 creates no /etc/llm-heartbeat"
    assert created.isdisjoint(installed), created & installed.keys()
    # every file step 2 makes is one the example names, and the reverse
    assert created | installed.keys() == set(files)
    for field, path in named:
        assert path.startswith(ETC + "/"), f"{field}: {path} is not under {ETC}"
        assert str(Path(path).parent) in dirs, f"step 2 creates no directory for {path}"
        if _kind(field) in TLS_KINDS:  # from the operator's PKI, not an empty file
            assert path in installed, f"step 2 does not install {field}: {path}"
            mode, owner, group, source = installed[path].group(1, 2, 3, 4)
            assert (owner, group) == ("root", "llm-heartbeat"), (field, owner, group)
            assert int(mode, 8) & 0o040, f"{path}: the service's group cannot read it"
            if _kind(field) == "key_file":
                assert int(mode, 8) & 0o007 == 0, f"{path}: a private key readable by all"
            assert Path(source).name == Path(path).name, (source, path)
        else:
            assert path in created, f"step 2 does not create {field}: {path}"
            assert f"tee {path} >/dev/null" in step, f"step 2 writes nothing into {path}"
    # the example as installed, /etc/llm-heartbeat moved to a scratch directory, the TLS files
    # a real private CA's (check-config loads them as PEM: a placeholder would be refused)
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    pem = {"ca_file": pki.ca, "cert_file": pki.client[0], "key_file": pki.client[1]}
    etc = tmp_path / "etc"
    for field, path in named:
        dest = etc / Path(path).relative_to(ETC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if _kind(field) in TLS_KINDS:
            shutil.copyfile(pem[_kind(field)], dest)
        else:
            dest.write_text("a-secret-value\n")
    config = etc / "llm-heartbeat.yml"
    config.write_text(text.replace(ETC, str(etc)).replace("/var/lib/llm-heartbeat", str(tmp_path)))
    cmd = [sys.executable, "-m", "exporter.cli", "check-config", str(config)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    (etc / "webhook_token").unlink()  # forgotten: named with the field, the file and the config
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert str(config) in bad.stderr and "recovery.auth.token_file" in bad.stderr
    key_pem = pki.client[1].read_text()
    assert "a-secret-value" not in bad.stdout + bad.stderr
    assert key_pem not in ok.stdout + ok.stderr + bad.stdout + bad.stderr


def test_the_example_restarts_the_unit_the_polkit_rule_allows() -> None:
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    units = [
        r["action"]["unit"]
        for r in example["recovery"]["rules"]
        if r["action"]["type"] == "systemd"
    ]
    allowed = re.findall(r'action\.lookup\("unit"\) == "([^"]+)"', README.read_text("utf-8"))
    assert units and allowed and set(units) == set(allowed), (units, allowed)
