"""examples/llm-heartbeat.yml and deploy/systemd/README.md tell one story (issue 22): the
README's step 2 creates every secret file the example names, in /etc/llm-heartbeat where
the README says secrets go, and its `check-config` (secrets read) then passes; the example's
restart action names the unit the README's polkit rule allows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llm-heartbeat.yml"
README = ROOT / "deploy" / "systemd" / "README.md"
ETC = "/etc/llm-heartbeat"


def _step2() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## 2. Configure") : text.index("## 3. The unit")]
    return section[section.index("```sh") : section.index("```", section.index("```sh") + 5)]


def _secret_files(node: object) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if str(key).endswith("_file") and key not in ("history_file", "log_file"):
                out.append(str(value))
            else:
                out += _secret_files(value)
    elif isinstance(node, list):
        for item in node:
            out += _secret_files(item)
    return out


def test_step_two_creates_every_secret_file_the_example_names_and_check_config_passes(
    tmp_path: Path,
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    files = _secret_files(yaml.safe_load(text))
    assert len(files) == 3  # the API key, the webhook token, the SMTP password
    step = _step2()
    assert f"check-config {ETC}/llm-heartbeat.yml" in step and "--skip-secrets" not in step
    created = re.search(r"for f in ([\w ]+); do", step)
    assert created is not None
    for path in files:
        assert path.startswith(ETC + "/"), path
        name = path.removeprefix(ETC + "/")
        assert name in created.group(1).split(), f"step 2 does not create {name}"
        assert f"{ETC}/{name} >/dev/null" in step, f"step 2 writes nothing into {name}"
    # the example as installed, /etc/llm-heartbeat moved to a scratch directory
    etc = tmp_path / "etc"
    etc.mkdir()
    for path in files:
        (etc / Path(path).name).write_text("a-secret-value\n")
    config = etc / "llm-heartbeat.yml"
    config.write_text(text.replace(ETC, str(etc)).replace("/var/lib/llm-heartbeat", str(tmp_path)))
    cmd = [sys.executable, "-m", "exporter.cli", "check-config", str(config)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    (etc / "webhook_token").unlink()  # forgotten: named with the field, the file and the config
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert str(config) in bad.stderr and "recovery.auth.token_file" in bad.stderr
    assert "a-secret-value" not in bad.stdout + bad.stderr


def test_the_example_restarts_the_unit_the_polkit_rule_allows() -> None:
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    units = [
        r["action"]["unit"]
        for r in example["recovery"]["rules"]
        if r["action"]["type"] == "systemd"
    ]
    allowed = re.findall(r'action\.lookup\("unit"\) == "([^"]+)"', README.read_text("utf-8"))
    assert units and allowed and set(units) == set(allowed), (units, allowed)
