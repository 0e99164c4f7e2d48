"""The whole loop on loopback: simulated vLLM servers under supervisors, the exporter (a real
`llm-heartbeat run` process with its recovery receiver), Debian's Prometheus and Alertmanager
with the shipped rules and routes, an SMTP sink and a chat-webhook sink for the humans.

    stack = Stack(tmp_path, [TargetSpec("crash")], TEST_PROFILE)
    stack.start()          # everything up, every target up, Prometheus scraping
    ...
    stack.stop()           # every process group ended, also after a failure

Used by tests/e2e/ and by the detection benchmark (bench/detection.py).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import free_port
from tests.e2e.configs import (
    REPO,
    AlertmanagerAddresses,
    RouteTimings,
    alertmanager_config,
    load_yaml,
    prometheus_config,
    short_timings,
)
from tests.e2e.procs import Proc, ProcessGroup, http_ok, wait_until
from tests.e2e.sinks import HttpRecorder, Mail, Posted, SmtpSink

__all__ = [
    "RECOVERY_ALERTS",
    "TEST_PROFILE",
    "Profile",
    "SimHandle",
    "Stack",
    "TargetSpec",
    "free_port",
    "missing_binaries",
]

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
RECOVERY_ALERTS = ("LLMTargetDown", "LLMInferenceDegraded")
TOKEN = "e2e-webhook-token"


def missing_binaries() -> list[str]:
    return [b for b in (PROMETHEUS, ALERTMANAGER) if shutil.which(b) is None]


@dataclass(frozen=True)
class TargetSpec:
    """One monitored model server: a simulator under its own supervisor."""

    name: str
    sim_args: tuple[str, ...] = ()
    """Simulator arguments for every start (e.g. a fault present from the beginning)."""
    checks: dict[str, Any] = field(default_factory=dict)
    """Per-target `checks:` overrides, merged over the profile's."""
    recover: bool = True
    """Give the target a recovery rule (restart through its supervisor)."""


@dataclass(frozen=True)
class Profile:
    """Everything that differs between the test stack and the benchmark's two profiles."""

    name: str
    prometheus_file: str
    """The shipped Prometheus config to start from (prometheus/<file>)."""
    interval: float | None
    """Replace every scrape/evaluation interval (seconds); None = as shipped."""
    exporter: dict[str, Any]
    """Top-level exporter settings (default_interval, jitter, ...)."""
    thresholds: dict[str, Any]
    checks: dict[str, Any]
    rails: dict[str, Any]
    am_timings: RouteTimings | None
    """Alertmanager route timings; None = as shipped."""
    restart_delay: float = 0.2


TEST_PROFILE = Profile(
    name="test",
    prometheus_file="prometheus-fast.yml",
    interval=1.0,
    exporter={"default_interval": 1.0, "jitter": 0.1},
    thresholds={"failures_to_down": 3, "retry_interval": 0.3},
    checks={"health": {"timeout": 1.0}, "models": {"timeout": 2.0}, "chat": {"timeout": 2.0}},
    rails={
        "cooldown": 1.0,
        "backoff_base": 1.0,
        "backoff_max": 2.0,
        "max_attempts": 2,
        "window": 600.0,
        "grace": 5.0,
        "verify_timeout": 12.0,
        "verify_interval": 0.5,
        "exhausted_check_interval": 1.0,
    },
    am_timings=short_timings,
)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class SimHandle:
    """One supervised simulator: its URLs, faults, next-start arguments and restart count."""

    def __init__(self, spec: TargetSpec, root: Path, port: int) -> None:
        self.spec = spec
        self.name = spec.name
        self.dir = root / f"sim-{spec.name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ready_file = self.dir / "ready.json"
        self.child_pidfile = self.dir / "child.pid"
        self.supervisor_pidfile = self.dir / "supervisor.pid"
        self.restart_file = self.dir / "restarts"
        self.args_file = self.dir / "next-start-args"
        self.proc: Proc | None = None

    def argv(self, restart_delay: float) -> list[str]:
        return [
            sys.executable, "-m", "exporter.simulate.supervisor",
            "--no-auto-restart",
            "--pidfile", str(self.child_pidfile),
            "--supervisor-pidfile", str(self.supervisor_pidfile),
            "--restart-count-file", str(self.restart_file),
            "--restart-delay", str(restart_delay),
            "--child-args-file", str(self.args_file),
            "--",
            "--port", str(self.port), "--admin-port", "0", "--ready-file", str(self.ready_file),
            *self.spec.sim_args,
        ]  # fmt: skip

    def restart_argv(self) -> list[str]:
        """The recovery action: SIGHUP to the supervisor restarts the model server."""
        return [
            "/bin/sh",
            "-c",
            'exec kill -HUP "$(cat "$1")"',
            "restart",
            str(self.supervisor_pidfile),
        ]

    def restarts(self) -> int:
        try:
            return int(self.restart_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _info(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.ready_file.read_text())
            pid = int(self.child_pidfile.read_text())
        except (OSError, ValueError):
            return None
        return info if info.get("pid") == pid else None

    def admin_url(self, timeout: float = 20.0) -> str:
        """The admin API of the child running now (each start picks a new admin port)."""
        info = wait_until(self._info, timeout, f"simulator {self.name} to write its ready file")
        return str(info["admin_url"])

    def fault(self, kind: str, **options: Any) -> dict[str, Any]:
        r = httpx.post(f"{self.admin_url()}/admin/fault", json={"kind": kind, **options}, timeout=5)
        r.raise_for_status()
        return dict(r.json())

    def crash(self) -> None:
        """The model server process dies (it stays dead: nothing but recovery restarts it)."""
        with contextlib.suppress(httpx.TransportError):  # it may exit before it answers
            self.fault("crash")

    def next_start(self, *args: str) -> None:
        """Arguments the supervisor adds to every later start (crash loop, slow start...)."""
        self.args_file.write_text(shlex.join(args) + "\n")

    def healthy(self) -> bool:
        return http_ok(f"{self.url}/health", timeout=1.0)


class Stack:
    """All processes of one end-to-end loop. `stop()` is safe to call at any point."""

    def __init__(self, workdir: Path, targets: list[TargetSpec], profile: Profile = TEST_PROFILE):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.profile = profile
        self.specs = targets
        self.group = ProcessGroup(self.dir / "logs")
        self.smtp = SmtpSink(free_port())
        self.humans = HttpRecorder()
        self.exporter_port = free_port()
        self.exporter_url = f"http://127.0.0.1:{self.exporter_port}"
        self.relay = HttpRecorder(forward_to=self.exporter_url)
        self.sims = {t.name: SimHandle(t, self.dir, free_port()) for t in targets}
        self.prom_port = free_port()
        self.am_port = free_port()
        self.prom_url = f"http://127.0.0.1:{self.prom_port}"
        self.am_url = f"http://127.0.0.1:{self.am_port}"
        self.token_file = self.dir / "webhook_token"
        self.history_file = self.dir / "exporter-history.jsonl"
        self.started_at = 0.0
        self._sinks_started = False
        self._http = httpx.Client(timeout=10)

    # ------------------------------------------------------------------ lifecycle
    def start(self, wait_up: tuple[str, ...] | None = None, timeout: float = 60.0) -> None:
        """Start everything; wait until the exporter reports the `wait_up` targets (default:
        all) up before Prometheus starts, so its first samples are real ones, not `unknown`."""
        self.started_at = time.time()
        self.token_file.write_text(TOKEN + "\n")
        self.token_file.chmod(0o600)
        self.smtp.start()
        self.humans.start()
        self.relay.start()
        self._sinks_started = True
        for sim in self.sims.values():
            sim.proc = self.group.start(f"sim-{sim.name}", sim.argv(self.profile.restart_delay))
        self._write_exporter_config()
        self.exporter = self.group.start("exporter", self._exporter_argv())
        wait_until(
            lambda: self._alive("exporter") and http_ok(f"{self.exporter_url}/-/ready"),
            timeout,
            "the exporter",
        )
        for name in self.specs_names() if wait_up is None else wait_up:
            wait_until(lambda n=name: self.state(n) == "up", timeout, f"target {name} up")
        self._start_alertmanager()
        wait_until(
            lambda: self._alive("alertmanager") and http_ok(f"{self.am_url}/-/ready"),
            timeout,
            "Alertmanager ready",
        )
        self._start_prometheus()
        wait_until(
            lambda: self._alive("prometheus") and http_ok(f"{self.prom_url}/-/ready"),
            timeout,
            "Prometheus ready",
        )
        wait_until(self._scraping, timeout, "Prometheus scraping the exporter")
        wait_until(self._prometheus_knows_alertmanager, timeout, "Prometheus -> Alertmanager")

    def restart_exporter(self, timeout: float = 60.0) -> None:
        """Stop the exporter process and start a new one on the same port and config."""
        self.exporter.stop()
        self.group.procs.remove(self.exporter)
        self.exporter = self.group.start("exporter", self._exporter_argv())
        wait_until(
            lambda: self._alive("exporter") and http_ok(f"{self.exporter_url}/-/ready"),
            timeout,
            "the restarted exporter",
        )

    def _alive(self, name: str) -> bool:
        """True while the named process runs; raises with its log when it has exited."""
        proc = next(p for p in self.group.procs if p.name == name)
        if not proc.alive():
            raise RuntimeError(f"{name} exited ({proc.popen.returncode}):\n{proc.tail(40)}")
        return True

    def stop(self) -> None:
        self.group.stop_all()
        if self._sinks_started:
            self.smtp.stop()
            self.humans.stop()
            self.relay.stop()
            self._sinks_started = False
        self._http.close()

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def specs_names(self) -> list[str]:
        return [t.name for t in self.specs]

    # ------------------------------------------------------------------ configs
    def exporter_settings(self) -> dict[str, Any]:
        p = self.profile
        targets = []
        rules = []
        for spec in self.specs:
            sim = self.sims[spec.name]
            targets.append(
                {
                    "name": spec.name,
                    "url": sim.url,
                    "thresholds": dict(p.thresholds),
                    "checks": _merge(p.checks, spec.checks),
                }
            )
            if spec.recover:
                rules.append(
                    {
                        "name": f"restart-{spec.name}",
                        "match": {"alertnames": list(RECOVERY_ALERTS), "targets": [spec.name]},
                        "action": {"type": "command", "argv": sim.restart_argv(), "timeout": 10},
                    }
                )
        return {
            **p.exporter,
            "listen": f"127.0.0.1:{self.exporter_port}",
            "history_file": str(self.history_file),
            "log_level": "info",
            "targets": targets,
            "recovery": {
                "enabled": True,
                "auth": {"token_file": str(self.token_file)},
                "history_file": str(self.dir / "recovery-history.jsonl"),
                "rules": rules,
                "rails": dict(p.rails),
                "notifications": {
                    "retries": 1,
                    "retry_delay": 0.5,
                    "email": [
                        {
                            "name": "oncall-mail",
                            "host": "127.0.0.1",
                            "port": self.smtp.port,
                            "security": "none",
                            "from": "llm-heartbeat@localhost",
                            "to": ["oncall@localhost"],
                            "timeout": 5,
                        }
                    ],
                    "webhooks": [{"name": "chat", "url": f"{self.humans.url}/recovery"}],
                },
            },
        }

    def _write_exporter_config(self) -> None:
        self.exporter_config = self.dir / "exporter.yml"
        self.exporter_config.write_text(yaml.safe_dump(self.exporter_settings(), sort_keys=False))

    def _exporter_argv(self) -> list[str]:
        script = Path(sys.executable).with_name("llm-heartbeat")
        head = (
            [str(script)]
            if script.exists()
            else [
                sys.executable,
                "-c",
                "import sys; from exporter.cli import main; sys.exit(main())",
            ]
        )
        return [*head, "run", "--config", str(self.exporter_config), "--listen",
                f"127.0.0.1:{self.exporter_port}"]  # fmt: skip

    def _start_alertmanager(self) -> None:
        chat_url_file = self.dir / "chat_webhook_url"
        chat_url_file.write_text(f"{self.humans.url}/chat\n")
        shipped = load_yaml(REPO / "alertmanager" / "alertmanager.yml")
        addr = AlertmanagerAddresses(
            recovery_base=self.relay.url,
            humans_webhook=f"{self.humans.url}/chat",
            smarthost=self.smtp.address,
            token_file=self.token_file,
            chat_url_file=chat_url_file,
        )
        cfg = alertmanager_config(shipped, addr, self.profile.am_timings)
        path = self.dir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        storage = self.dir / "alertmanager-data"
        storage.mkdir(exist_ok=True)
        self.group.start(
            "alertmanager",
            [
                shutil.which(ALERTMANAGER) or ALERTMANAGER,
                f"--config.file={path}",
                f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.am_port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
        )

    def _start_prometheus(self) -> None:
        shipped_path = REPO / "prometheus" / self.profile.prometheus_file
        cfg = prometheus_config(
            load_yaml(shipped_path),
            shipped_dir=shipped_path.parent,
            exporter=f"127.0.0.1:{self.exporter_port}",
            alertmanager=f"127.0.0.1:{self.am_port}",
            interval=self.profile.interval,
        )
        path = self.dir / "prometheus.yml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        storage = self.dir / "prometheus-data"
        storage.mkdir(exist_ok=True)
        self.group.start(
            "prometheus",
            [
                shutil.which(PROMETHEUS) or PROMETHEUS,
                f"--config.file={path}",
                f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.prom_port}",
            ],
        )

    # ------------------------------------------------------------------ exporter views
    def target(self, name: str) -> dict[str, Any]:
        r = self._http.get(f"{self.exporter_url}/api/v1/targets/{name}")
        r.raise_for_status()
        return dict(r.json())

    def state(self, name: str) -> str | None:
        try:
            return str(self.target(name)["state"])
        except httpx.HTTPError:
            return None

    def transitions(self, name: str, since: float = 0.0) -> list[dict[str, Any]]:
        """Every transition of the target, from the exporter's history file (wall-clock times)."""
        out = []
        try:
            lines = self.history_file.read_text().splitlines()
        except OSError:
            return []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("target") == name and rec.get("time", 0) >= since:
                out.append(rec)
        return out

    def metric(self, name: str, **labels: str) -> float | None:
        """The sum of the exporter's samples `name` whose labels include `labels` (None: none)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self._http.get(f"{self.exporter_url}/metrics").text
        values = [
            float(s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        return sum(values) if values else None

    def recovery_status(self) -> dict[str, Any]:
        r = self._http.get(
            f"{self.exporter_url}/api/v1/recovery", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        r.raise_for_status()
        return dict(r.json())

    # ------------------------------------------------------------------ Prometheus views
    def _scraping(self) -> bool:
        result = self.prom_query('up{job="llm-heartbeat"}')
        return bool(result) and result[0]["value"][1] == "1"

    def _prometheus_knows_alertmanager(self) -> bool:
        r = self._http.get(f"{self.prom_url}/api/v1/alertmanagers")
        return bool(r.json()["data"]["activeAlertmanagers"])

    def prom_query(self, expr: str) -> list[dict[str, Any]]:
        r = self._http.get(f"{self.prom_url}/api/v1/query", params={"query": expr})
        r.raise_for_status()
        return list(r.json()["data"]["result"])

    def prom_alerts(self, target: str | None = None) -> list[dict[str, Any]]:
        """Prometheus's active alerts (pending and firing), optionally for one target."""
        r = self._http.get(f"{self.prom_url}/api/v1/alerts")
        r.raise_for_status()
        alerts = r.json()["data"]["alerts"]
        return [a for a in alerts if target is None or a["labels"].get("target") == target]

    def prom_alert_state(self, alertname: str, target: str) -> str | None:
        """'pending', 'firing' or None."""
        for alert in self.prom_alerts(target):
            if alert["labels"].get("alertname") == alertname:
                return str(alert["state"])
        return None

    def firing_samples(self, alertname: str, target: str, since: float) -> list[float]:
        """Evaluation times (unix seconds) at which the alert was firing since `since`."""
        window = max(1, int(time.time() - since) + 2)
        expr = f'ALERTS{{alertname="{alertname}",alertstate="firing",target="{target}"}}[{window}s]'
        out: list[float] = []
        for series in self.prom_query(expr):
            out.extend(float(t) for t, _ in series["values"] if float(t) >= since)
        return sorted(out)

    def alert_history(self, target: str, since: float) -> list[str]:
        """Every alert name Prometheus evaluated as pending or firing for the target since."""
        window = max(1, int(time.time() - since) + 2)
        names = set()
        for series in self.prom_query(f'ALERTS{{target="{target}"}}[{window}s]'):
            if any(float(t) >= since for t, _ in series["values"]):
                names.add(f"{series['metric']['alertname']}:{series['metric']['alertstate']}")
        return sorted(names)

    # ------------------------------------------------------------------ Alertmanager views
    def am_alerts(self, target: str | None = None) -> list[dict[str, Any]]:
        params = [("filter", f'target="{target}"')] if target else []
        r = self._http.get(f"{self.am_url}/api/v2/alerts", params=params)
        r.raise_for_status()
        return list(r.json())

    # ------------------------------------------------------------------ humans
    def mails(self, since: float = 0.0) -> list[Mail]:
        return [m for m in self.smtp.snapshot() if m.at >= since]

    def webhooks(self, target: str | None = None, since: float = 0.0) -> list[Posted]:
        """Recovery webhooks Alertmanager sent (through the relay), optionally for a target."""
        out = []
        for post in self.relay.snapshot():
            if post.at < since:
                continue
            if target is not None:
                body = post.json()
                if body.get("groupLabels", {}).get("target") != target and not any(
                    a.get("labels", {}).get("target") == target for a in body.get("alerts", [])
                ):
                    continue
            out.append(post)
        return out

    def chat_posts(self, since: float = 0.0) -> list[Posted]:
        return [p for p in self.humans.snapshot() if p.at >= since]

    # ------------------------------------------------------------------ diagnostics
    def report(self, lines: int = 80) -> str:
        """Logs and what the humans got: printed when a test fails."""
        parts = [self.group.logs(lines)]
        parts.append("----- mails -----")
        parts += [f"{m.at:.1f} {m.subject}" for m in self.smtp.snapshot()]
        parts.append("----- recovery webhooks (Alertmanager -> relay -> exporter) -----")
        for p in self.relay.snapshot():
            try:
                body = p.json()
                alerts = [
                    (a["labels"].get("alertname"), a["labels"].get("target"), a["status"])
                    for a in body.get("alerts", [])
                ]
            except (ValueError, KeyError):
                alerts = []
            parts.append(f"{p.at:.1f} -> {p.status} {alerts}")
        try:
            parts.append("----- exporter history -----")
            parts.append(self.history_file.read_text()[-6000:])
        except OSError:
            pass
        return "\n".join(parts)
