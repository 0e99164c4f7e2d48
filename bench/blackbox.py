"""The peer: Debian's prometheus-blackbox-exporter with one http module per check, POSTing
the very request body our chat probe sends and matching the answer with a regex."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from bench import fixtures
from bench.servers import wait_port

__all__ = ["MODULES", "Blackbox", "blackbox_config", "blackbox_version"]

# module per check, in our check order
MODULES = {"health": "llm_health", "models": "llm_models", "chat": "llm_chat"}
PATHS = {"health": fixtures.HEALTH_PATH, "models": fixtures.MODELS_PATH, "chat": fixtures.CHAT_PATH}


def blackbox_config() -> str:
    """blackbox.yml: same timeouts as our checks' defaults, IPv4, no redirects."""
    common = (
        "    prober: http\n"
        "    timeout: {timeout}\n"
        "    http:\n"
        "      preferred_ip_protocol: ip4\n"
        "      ip_protocol_fallback: false\n"
        "      follow_redirects: false\n"
        "      valid_status_codes: [200]\n"
    )
    body = json.dumps(fixtures.chat_request_body().decode())
    return (
        "modules:\n"
        f"  {MODULES['health']}:\n" + common.format(timeout="5s") + "      method: GET\n"
        f"  {MODULES['models']}:\n" + common.format(timeout="10s") + "      method: GET\n"
        "      fail_if_body_not_matches_regexp:\n"
        f"        - {json.dumps(fixtures.EXPECT_MODEL_REGEX)}\n"
        f"  {MODULES['chat']}:\n" + common.format(timeout="30s") + "      method: POST\n"
        "      headers:\n"
        "        Content-Type: application/json\n"
        f"      body: {body}\n"
        "      fail_if_body_not_matches_regexp:\n"
        f"        - {json.dumps(fixtures.EXPECT_CHAT)}\n"
    )


def _binary() -> str:
    return (
        shutil.which("prometheus-blackbox-exporter")
        or shutil.which("blackbox_exporter")
        or "prometheus-blackbox-exporter"
    )


def blackbox_version() -> str:
    try:
        out = subprocess.run([_binary(), "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (out.stdout or out.stderr).splitlines()
    return text[0] if text else "unknown"


class Blackbox:
    """One blackbox_exporter process listening on 127.0.0.1:port."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.tmp / "blackbox.yml"
        conf.write_text(blackbox_config())
        self.proc = subprocess.Popen(
            [
                _binary(),
                f"--config.file={conf}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.tmp / "blackbox.log").open("wb"),
        )
        wait_port(self.port)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
