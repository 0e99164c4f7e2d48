"""`llm-heartbeat`: run the exporter, check a config, probe one URL, or simulate a server."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from exporter import __version__
from exporter.cli.common import EXIT_USAGE

__all__ = ["main"]


def _duration(text: str) -> float:
    from exporter.config.durations import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return seconds


def _servers() -> tuple[str, ...]:
    from typing import get_args

    from exporter.config.targets import ServerKind

    return get_args(ServerKind)


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
    run.add_argument(
        "--model",
        help="model the --target servers must list and be asked for (default: none required; "
        "the chat probe asks for the first model /v1/models lists)",
    )
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
        "known. Exit 0 healthy, 1 unhealthy, 2 usage error, 3 starting (loading), "
        "4 busy (rate limited).",
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
    probe.add_argument(
        "--server",
        choices=_servers(),
        default="auto",
        help="what the server is, for its health endpoint (default auto: found out)",
    )
    probe.add_argument("--no-chat", action="store_true", help="skip the chat completion")
    probe.add_argument("--no-stream", action="store_true", help="non-streaming chat completion")
    probe.add_argument("--expect", help="text the answer must contain")
    probe.add_argument("--json", action="store_true", help="print JSON instead of a table")

    from exporter.cli.maintenance import add_parser as add_maintenance

    add_maintenance(sub, _duration)

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
        from exporter.cli.run import check_config

        return check_config(args.file, read_secrets=not args.skip_secrets)
    if args.command == "maintenance":
        from exporter.cli.maintenance import maintenance

        return asyncio.run(maintenance(args))
    if args.command == "probe":
        from exporter.cli.probe import probe

        return asyncio.run(probe(args))
    from exporter.cli.run import run

    return run(args)
