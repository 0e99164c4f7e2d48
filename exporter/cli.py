"""`llm-heartbeat`: run the exporter, check a config, probe one URL, or simulate a server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from exporter import __version__
from exporter.config import (
    DEFAULT_MODEL_URL,
    Settings,
    TargetConfig,
    load_config,
    targets_from_flags,
)
from exporter.errors import ConfigError, validation_messages

__all__ = ["main"]

log = logging.getLogger("llm-heartbeat")

# `probe`: 0 healthy, 1 unhealthy, 2 usage error, 3 starting (loading: /health 503)
EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE, EXIT_STARTING = 0, 1, 2, 3


def _duration(text: str) -> float:
    from exporter.config.durations import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return seconds


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llm-heartbeat",
        description="Prometheus exporter that proves LLM inference servers really answer.",
    )
    p.add_argument("--version", action="version", version=f"llm-heartbeat {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="probe the configured targets and serve /metrics")
    run.add_argument("--config", "-c", type=Path, help="YAML config (or LLM_HEARTBEAT_CONFIG)")
    run.add_argument("--listen", help="HOST:PORT to serve on (default 0.0.0.0:8001)")
    run.add_argument(
        "--target",
        action="append",
        metavar="[NAME=]URL",
        help="model server to probe, e.g. http://gpu-7:8000 (repeatable; replaces the config's)",
    )
    run.add_argument("--model", help="model the --target servers must serve (default: any)")
    run.add_argument(
        "--simulate-if-missing",
        action="store_true",
        help="with no target configured and nothing on localhost:8000, start the simulator there",
    )
    run.add_argument(
        "--shard",
        type=int,
        metavar="INDEX",
        help="probe only the targets whose name hashes to INDEX (0-based; needs --shards)",
    )
    run.add_argument(
        "--shards", type=int, metavar="N", help="number of replicas splitting the targets"
    )

    chk = sub.add_parser("check-config", help="validate a config file and exit")
    chk.add_argument("file", type=Path)
    chk.add_argument(
        "--skip-secrets",
        action="store_true",
        help="require token sources but do not read them (secrets mounted only at deploy)",
    )

    probe = sub.add_parser(
        "probe",
        help="one round of all checks against one URL",
        description="One round of all checks, concurrently; the verdict as soon as it is "
        "known. Exit 0 healthy, 1 unhealthy, 2 usage error, 3 starting (loading).",
    )
    probe.add_argument("url", help="the server's base URL (a trailing /v1 is dropped)")
    probe.add_argument("--model", help="model the server must serve (default: the first listed)")
    probe.add_argument("--api-key-file", type=Path, help="file holding the API key")
    probe.add_argument(
        "--timeout",
        type=_duration,
        default=30.0,
        help="deadline of the round: 5s, 1m (default 30s)",
    )
    probe.add_argument("--no-chat", action="store_true", help="skip the chat completion")
    probe.add_argument("--no-stream", action="store_true", help="non-streaming chat completion")
    probe.add_argument("--expect", help="text the answer must contain")
    probe.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub.add_parser(
        "simulate", help="run a simulated vLLM server (see `simulate --help`)", add_help=False
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "simulate":
        from exporter.simulate import main as simulate_main

        return simulate_main(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.command == "check-config":
        return _check_config(args.file, read_secrets=not args.skip_secrets)
    if args.command == "probe":
        return asyncio.run(_probe(args))
    return _run(args)


def _check_config(path: Path, *, read_secrets: bool = True) -> int:
    """Rejects everything `run` rejects, each as a message naming the file and the field."""
    from exporter.preflight import preflight

    try:
        settings = load_config(path)
        preflight(settings, read_secrets=read_secrets)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: OK ({len(settings.targets)} target(s))")
    return EXIT_OK


# ---- probe ---------------------------------------------------------------------------------
async def _probe(args: argparse.Namespace) -> int:
    from exporter.engine.rounds import Verdict, direct_runner, run_round
    from exporter.probes import make_client
    from exporter.probes.results import VERDICT_CHECKS
    from exporter.server.views import result_view

    url = args.url.rstrip("/")
    if urlsplit(url).path.endswith("/v1"):
        url = url.removesuffix("/v1")
        print(f"llm-heartbeat probe: using {url} (the checks add /v1/...)", file=sys.stderr)
    try:
        checks: dict[str, Any] = {
            "chat": {"enabled": not args.no_chat, "stream": not args.no_stream}
        }
        if args.expect:
            checks["chat"]["expect_contains"] = args.expect
        target = TargetConfig(
            name="probe", url=url, model=args.model, api_key_file=args.api_key_file, checks=checks
        )
    except ValidationError as exc:
        print(f"llm-heartbeat probe: {_first_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    if args.api_key_file is not None and not args.api_key_file.is_file():
        print(f"llm-heartbeat probe: cannot read {args.api_key_file}", file=sys.stderr)
        return EXIT_USAGE
    wanted = [c for c in VERDICT_CHECKS if getattr(target.checks, c.value).enabled]
    async with make_client() as client:
        found = await run_round(
            wanted, direct_runner(client, target), args.timeout, model=args.model
        )
    results, model = found.results, found.model
    if args.json:
        out: dict[str, Any] = {"url": target.safe_url, "model": model}
        out |= {"verdict": found.verdict.value, "healthy": found.verdict is Verdict.HEALTHY}
        out["checks"] = {r.check.value: result_view(r) for r in results}
        out["skipped"] = [c.value for c in found.skipped]
        print(json.dumps(out, indent=2))
    else:
        print(f"{target.safe_url}  model={model or '-'}")
        print(f"{'CHECK':<8} {'RESULT':<7} {'HTTP':>4} {'TIME':>8} {'TTFT':>8}  DETAIL")
        for r in results:
            ttft = f"{r.ttft * 1000:.0f}ms" if r.ttft is not None else "-"
            word = "ok" if r.success else "FAIL"
            detail = r.detail if not r.success else (f"answer={r.content!r}" if r.content else "")
            if not r.success and r.reason:
                detail = f"{r.reason.value}: {detail}"
            print(
                f"{r.check.value:<8} {word:<7} {r.status_code or '-':>4} "
                f"{r.duration * 1000:>6.0f}ms {ttft:>8}  {detail}"
            )
        for c in found.skipped:
            print(f"{c.value:<8} {'skipped':<7} {'-':>4} {'-':>8} {'-':>8}  verdict already known")
        print({"healthy": "healthy", "starting": "STARTING"}.get(found.verdict, "UNHEALTHY"))
    return {Verdict.HEALTHY: EXIT_OK, Verdict.STARTING: EXIT_STARTING}.get(
        found.verdict, EXIT_UNHEALTHY
    )


def _first_error(exc: ValidationError) -> str:
    where, msg = validation_messages(exc, limit=1)[0]
    return f"{where}: {msg}" if where else msg


# ---- run -----------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    from exporter.preflight import preflight

    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.listen:
        try:
            settings = Settings(
                **{**settings.model_dump(exclude_unset=True), "listen": args.listen}
            )
        except ValidationError as exc:
            print(f"invalid --listen: {_first_error(exc)}", file=sys.stderr)
            return EXIT_USAGE
    if args.target or args.model:
        try:
            if not args.target:
                raise ValueError("--model needs --target (in a config file: targets[].model)")
            targets = targets_from_flags(args.target, args.model)
        except ValueError as exc:
            print(f"llm-heartbeat run: {exc}", file=sys.stderr)
            return EXIT_USAGE
        settings = settings.model_copy(update={"targets": targets})
    if args.shard is not None or args.shards is not None:
        from exporter.config import ShardingConfig

        try:
            sharding = ShardingConfig(  # a flag overrides the config file and environment
                index=settings.sharding.index if args.shard is None else args.shard,
                count=settings.sharding.count if args.shards is None else args.shards,
            )
        except ValidationError as exc:
            print(f"invalid --shard/--shards: {_first_error(exc)}", file=sys.stderr)
            return EXIT_USAGE
        settings = settings.model_copy(update={"sharding": sharding})
    try:
        preflight(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    from exporter.logs import setup_logging

    setup_logging(settings.log_format, settings.log_level, settings.log_file)
    try:
        return asyncio.run(_serve(settings, args))
    except ConfigError as exc:  # RecoveryConfigError included
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


def _listening(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with contextlib.suppress(OSError), socket.create_connection((parts.hostname, port), timeout):
        return True
    return False


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from exporter.runtime import Exporter
    from exporter.server.serve import raise_nofile, serve_then, server_config

    raise_nofile()

    _Server = _server_class()
    simulator = None
    if settings.with_default_target() is not settings:  # no target from anywhere
        settings = settings.with_default_target()
        if not _listening(DEFAULT_MODEL_URL):
            if args.simulate_if_missing:
                simulator = await _start_simulator()
            else:
                log.warning(
                    "no target configured and nothing listens on %s (vLLM's default address): "
                    "the target will be reported DOWN. Configure targets with --config, or run "
                    "`make run` / --simulate-if-missing to try it against the built-in simulator.",
                    DEFAULT_MODEL_URL,
                )
    exporter = Exporter(settings, args.config)
    server = _Server(server_config(exporter.app, settings.listen_host, settings.listen_port))
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        loop.add_signal_handler(signal.SIGHUP, lambda: log.warning("SIGHUP ignored: starting"))

    base = f"http://{_browsable(settings.listen_host)}:{settings.listen_port}"

    async def start() -> None:
        log.info("status page %s/  (metrics: %s/metrics, Ctrl+C stops)", base, base)
        await exporter.start()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, exporter.reload_in_background)

    try:
        await serve_then(server, start)  # serving first, then the targets
    finally:
        await exporter.stop()
        if simulator is not None:
            await simulator.stop()
    return EXIT_OK if server.started else EXIT_USAGE


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after serving, which would kill the process before the
        exporter closes its history file and the simulator; the loop's handlers stop it
        cleanly instead."""

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            yield

    return Server


def _browsable(host: str) -> str:
    """A host to put in a URL the user opens: a wildcard address is not one."""
    return {"0.0.0.0": "localhost", "::": "localhost", "": "localhost"}.get(host, host)


async def _start_simulator() -> Any:
    from exporter.simulate import Simulator, SimulatorConfig
    from exporter.simulate.cli import ADMIN_PORT_OFFSET

    port = urlsplit(DEFAULT_MODEL_URL).port or 8000
    # the admin API where `llm-heartbeat simulate` puts it (the README's commands work), or
    # any free port when that one is taken: the log line below names it either way
    for admin in (port + ADMIN_PORT_OFFSET, 0):
        sim = Simulator(SimulatorConfig(host="127.0.0.1", port=port, admin_port=admin))
        try:
            await sim.start()
            break
        except OSError:
            await sim.stop()
            if admin == 0:
                raise
    log.warning(
        "nothing listened on %s, so the built-in SIMULATED vLLM server (model %s) was started "
        'there. Break it on purpose through its admin API %s (README: "Break it"); '
        "monitor a real server with --target URL or --config.",
        DEFAULT_MODEL_URL,
        sim.config.model,
        sim.admin_url,
    )
    return sim


if __name__ == "__main__":
    raise SystemExit(main())
