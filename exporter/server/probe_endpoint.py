"""`GET /probe?target=URL&module=NAME`: multi-target probing the blackbox_exporter way.

One round of the module's checks against the given target (engine/rounds.py, concurrently), answered with that round's
metrics in a fresh registry (the same `llm_*` families the collector loop exports, plus
`probe_success` and `probe_duration_seconds`), so Prometheus owns the target list and the
schedule. The round's deadline is min(module timeout, X-Prometheus-Scrape-Timeout-Seconds
minus `probe.timeout_offset`). A target outside `probe.allowed_targets` is refused with 403:
without an allow-list this endpoint would be an open proxy into the cluster network.
`&debug=true` answers with the round's log and metrics as plain text instead (header values
redacted). /probe has its own connection pool and concurrency budget (`probe.max_concurrency`;
past it, 503 at once), so no number of /probe clients can delay a scheduled probe; with
`probe.token_file` or `probe.token_env` set it asks for `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from exporter.config import EngineCheck, ProbeModule, Settings, TargetConfig
from exporter.discovery import derive_name
from exporter.engine.monitor import Monitor
from exporter.engine.rounds import direct_runner, run_round
from exporter.errors import ProbeRefused, validation_messages
from exporter.metrics.collector import MonitorCollector
from exporter.probes.results import VERDICT_CHECKS
from exporter.probes.transport import Transport
from exporter.util.secrets import bearer_ok

__all__ = [
    "SCRAPE_TIMEOUT_HEADER",
    "ProbeEndpoint",
    "ProbeRefused",
    "deadline_for",
    "is_allowed",
    "target_url",
]

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


# ---- pure helpers ----------------------------------------------------------------------------
def target_url(raw: str, module: ProbeModule) -> str:
    """The base URL to probe: `host:port` gets the module's scheme; credentials are refused
    (they would end up in labels and logs: give the module an api_key_file instead)."""
    raw = raw.strip()
    if not raw:
        raise ProbeRefused("target parameter is missing")
    url = raw if "://" in raw else f"{module.scheme}://{raw}"
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise ProbeRefused("target is not a valid URL or host:port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeRefused("target must be host:port or an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ProbeRefused("target must not carry credentials")
    if parts.query or parts.fragment:
        raise ProbeRefused("target must not have a query or fragment")
    return url.rstrip("/")


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def is_allowed(url: str, patterns: list[str]) -> bool:
    """Whether the allow-list admits the URL's host and port.

    A pattern is a CIDR (`10.0.0.0/8`: IP-literal hosts in it, any port), a glob on the host
    (`*.llm.svc.cluster.local`: any port) or a glob on host:port (`vllm-*.models:8000`).
    Host names are not resolved: list names, or make targets IP literals and list CIDRs.
    """
    host, port = _host_port(url)
    host_port = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in patterns:
        pattern = raw.strip().lower()
        if "/" in pattern:
            net = ipaddress.ip_network(pattern, strict=False)
            if ip is not None and ip.version == net.version and ip in net:
                return True
            continue
        with_port = pattern.startswith("[") or (pattern.count(":") == 1)
        subject = host_port if with_port else host
        if _glob(pattern).fullmatch(subject):
            return True
    return False


def _glob(pattern: str) -> re.Pattern[str]:
    """A host glob where `*` and `?` stay within one DNS label (and off the port):
    `vllm-*:8000` admits `vllm-a:8000`, never `vllm-a.evil.com:8000`."""
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append("[^.:]*")
        elif ch == "?":
            parts.append("[^.:]")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts))


def deadline_for(module: ProbeModule, header: str | None, offset: float) -> float:
    """min(module timeout, scrape timeout - offset); an offset larger than the scrape
    timeout is ignored rather than leaving no time at all (as blackbox_exporter does)."""
    if header is None or not header.strip():
        return module.timeout
    try:
        scrape = float(header)
    except ValueError:
        raise ProbeRefused(f"{SCRAPE_TIMEOUT_HEADER} is not a number") from None
    if not scrape > 0:
        raise ProbeRefused(f"{SCRAPE_TIMEOUT_HEADER} must be positive")
    if scrape - offset > 0:
        scrape -= offset
    return min(module.timeout, scrape)


def target_for(url: str, module: ProbeModule, name: str | None) -> TargetConfig:
    """The TargetConfig of one /probe round. One failure decides (failures_to_down 1):
    the round is all there is; Prometheus keeps the history and the rules' `for:` the patience."""
    host, port = _host_port(url)
    host_port = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    fields = {k: getattr(module, k) for k in module.model_fields_set - {"timeout", "scheme"}}
    # one round: the engine view needs samples over time, so /probe has none
    checks = module.checks.model_copy(update={"engine": EngineCheck(enabled=False)})
    fields["checks"] = checks
    return TargetConfig(
        **fields,
        name=name or derive_name(host_port),
        url=url,
        thresholds={"failures_to_down": 1, "successes_to_up": 1},
    )


# ---- one round -------------------------------------------------------------------------------
class _RoundCollector(Collector):
    """The blackbox-style summary of one round."""

    def __init__(self, success: bool, duration: float) -> None:
        self.success = success
        self.duration = duration

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "probe_success", "1 when every check of the round passed.", value=float(self.success)
        )
        yield GaugeMetricFamily(
            "probe_duration_seconds", "How long the round took.", value=self.duration
        )


# ---- the endpoint ----------------------------------------------------------------------------
class ProbeEndpoint:
    """The /probe route and its request counter (`llm_probe_endpoint_requests_total`)."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        client: Transport,
        concurrency: int = 16,
        token: str | None = None,
    ) -> None:
        self.settings = settings
        self.client = client  # its own pool: never the scheduler's
        self._sem = asyncio.Semaphore(concurrency)
        self.token = token
        self.requests: Counter[tuple[str, str]] = Counter()

    def routes(self) -> list[BaseRoute]:
        return [Route("/probe", self.handle, methods=["GET"])]

    def collector(self) -> Collector:
        return _EndpointCollector(self)

    async def handle(self, request: Request) -> Response:
        settings = self.settings()
        cfg = settings.probe
        params = request.query_params
        if self.token is not None and not bearer_ok(
            request.headers.get("authorization"), self.token
        ):
            self.requests[("unknown", "unauthorized")] += 1
            return PlainTextResponse(
                "/probe needs Authorization: Bearer <token>\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        module_name = params.get("module", "")
        module = cfg.modules.get(module_name)
        label = module_name if module is not None else "unknown"
        if module is None:
            known = ", ".join(sorted(cfg.modules)) or "none configured"
            return self._refuse(label, 400, f"unknown module {module_name!r} (modules: {known})")
        try:
            url = target_url(params.get("target", ""), module)
            if not is_allowed(url, cfg.allowed_targets):
                self.requests[(label, "refused")] += 1
                log.warning("/probe refused %s: not in probe.allowed_targets", url)
                return PlainTextResponse(
                    f"target {url} is not in probe.allowed_targets\n", status_code=403
                )
            deadline = deadline_for(
                module, request.headers.get(SCRAPE_TIMEOUT_HEADER), cfg.timeout_offset
            )
            target = target_for(url, module, params.get("name") or None)
        except ProbeRefused as exc:
            return self._refuse(label, 400, str(exc))
        except ValidationError as exc:  # TargetConfig validation (e.g. an invalid name)
            return self._refuse(label, 400, validation_messages(exc, limit=1)[0][1])

        if self._sem.locked():  # its whole budget is in use: say so now, queue nothing
            self.requests[(label, "busy")] += 1
            return PlainTextResponse(
                "too many /probe requests at once (probe.max_concurrency)\n",
                status_code=503,
                headers={"Retry-After": "1"},
            )
        lines: list[str] = []
        t0 = time.perf_counter()

        def note(message: str) -> None:
            lines.append(f"{time.perf_counter() - t0:8.3f}s {message}")

        note(f"probing {target.safe_url} module={module_name} deadline={deadline:g}s")
        async with self._sem:
            # a throwaway monitor: transitions go to the round's log, not the exporter's
            # log or history file
            monitor = Monitor(
                settings.model_copy(update={"targets": [target], "history_file": None}),
                sinks=[lambda t: note(f"state {t.from_state} -> {t.to_state} ({t.reason})")],
            )
            checks = [c for c in VERDICT_CHECKS if getattr(target.checks, c.value).enabled]
            # every check's own answer: the metrics have a series per check (no early stop)
            found = await run_round(
                checks,
                direct_runner(self.client, target),
                deadline,
                model=target.model,
                stop_early=False,
                note=note,
            )
        results = found.results
        for result in results:
            monitor.record(target.name, result)
        duration = time.perf_counter() - t0
        # a check the server does not offer (404 on /health) neither passes nor fails
        success = any(r.offered for r in results) and all(
            r.success or not r.offered for r in results
        )
        note(f"probe {'succeeded' if success else 'failed'} in {duration:.3f}s")
        self.requests[(label, "success" if success else "failure")] += 1

        registry = CollectorRegistry(auto_describe=False)
        registry.register(MonitorCollector(monitor))
        registry.register(_RoundCollector(success, duration))
        if params.get("debug", "").lower() == "true":
            return PlainTextResponse(_debug_text(lines, registry, module_name, module))
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    def _refuse(self, module: str, status: int, message: str) -> Response:
        self.requests[(module, "bad_request")] += 1
        return PlainTextResponse(message + "\n", status_code=status)


def _debug_text(
    lines: list[str], registry: CollectorRegistry, name: str, module: ProbeModule
) -> str:
    # mode="json" shows SecretStr as '**********'; header values (Authorization, API keys)
    # are redacted too: the module's secrets stay secret
    dumped = module.model_dump(mode="json")
    dumped["headers"] = {k: "<redacted>" for k in dumped.get("headers", {})}
    config = yaml.safe_dump({name: dumped}, sort_keys=False)
    return (
        "Logs for the probe:\n"
        + "\n".join(lines)
        + "\n\n\nMetrics that would have been returned:\n"
        + generate_latest(registry).decode()
        + "\n\nModule configuration:\n"
        + config
    )


class _EndpointCollector(Collector):
    def __init__(self, endpoint: ProbeEndpoint) -> None:
        self.endpoint = endpoint

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "llm_probe_endpoint_requests",
            "/probe requests by module and result (success, failure, refused, bad_request, "
            "busy, unauthorized).",
            labels=["module", "result"],
        )
        for (module, result), n in sorted(self.endpoint.requests.items()):
            family.add_metric([module, result], n)
        yield family
