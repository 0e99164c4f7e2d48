"""`llm-heartbeat run` and `check-config`: load, refuse what cannot work, serve."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from exporter.cli.common import EXIT_OK, EXIT_USAGE, first_error, log
from exporter.config import DEFAULT_MODEL_URL, Settings, load_config, targets_from_flags
from exporter.errors import ConfigError
from exporter.util.loop import run as run_loop

__all__ = ["check_config", "run"]


def check_config(path: Path, *, read_secrets: bool = True) -> int:
    """Rejects everything `run` rejects, each as a message naming the file and the field."""
    from exporter.config.tls import files_unchecked
    from exporter.discovery.check import check_file_sd
    from exporter.preflight import preflight

    try:
        if read_secrets:
            settings = load_config(path)
        else:
            with files_unchecked():  # TLS files mounted at deploy time, like the secrets
                settings = load_config(path)
        preflight(settings, read_secrets=read_secrets, source=str(path))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    errors, warnings = check_file_sd(settings.discovery, path.parent)
    for message in warnings:
        print(f"warning: {message}", file=sys.stderr)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: OK ({len(settings.targets)} target(s))")
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
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
            print(f"invalid --listen: {first_error(exc)}", file=sys.stderr)
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
            print(f"invalid --shard/--shards: {first_error(exc)}", file=sys.stderr)
            return EXIT_USAGE
        settings = settings.model_copy(update={"sharding": sharding})
    try:
        preflight(settings, source=_source(args.config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    from exporter.logs import setup_logging

    setup_logging(settings.log_format, settings.log_level, settings.log_file)
    try:
        return run_loop(_serve(settings, args), settings.event_loop)
    except ConfigError as exc:  # RecoveryConfigError included
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


def _source(config: Path | None) -> str:
    """Where the settings came from, for an error message."""
    named = config or os.environ.get("LLM_HEARTBEAT_CONFIG")
    return str(named) if named else "the environment and flags"


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
        history = settings.history_file
        log.info(
            "status page %s/  (metrics: %s/metrics, JSON: %s/api/v1/targets; Ctrl+C stops); "
            "transition history: %s",
            base,
            base,
            base,
            history.resolve() if history is not None else "not kept (history_file empty)",
        )
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
