"""`llm-heartbeat simulate`: command-line entry point of the simulator."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from exporter.simulate.config import DEFAULT_MODEL, VLLM_VERSION, SimulatorConfig
from exporter.simulate.farm import SimulatorFarm, parse_port_range
from exporter.simulate.faults import FAULT_KINDS, FaultSpec
from exporter.simulate.server import Simulator
from exporter.simulate.supervisor import add_supervisor_args, supervise_from_args

__all__ = ["build_parser", "config_from_args", "main", "parse_fault"]

ADMIN_PORT_OFFSET = 10000


def parse_fault(text: str) -> FaultSpec:
    """`kind`, `kind:key=value,key=value` or a JSON object -> FaultSpec."""
    text = text.strip()
    if text.startswith("{"):
        return FaultSpec.from_dict(json.loads(text))
    kind, _, rest = text.partition(":")
    data: dict[str, Any] = {"kind": kind.strip()}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"fault option {item!r} is not key=value")
        try:
            data[key.strip()] = json.loads(value)
        except ValueError:
            data[key.strip()] = value
    return FaultSpec.from_dict(data)


def _fault_arg(text: str) -> FaultSpec:
    try:
        return parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser(prog: str = "llm-heartbeat simulate") -> argparse.ArgumentParser:
    kinds = "\n".join(f"  {k:13} {v}" for k, v in FAULT_KINDS.items())
    p = argparse.ArgumentParser(
        prog=prog,
        description="A simulated vLLM server (OpenAI-compatible API) that fails on command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"fault kinds (--fault KIND[:key=value,...] or JSON):\n{kinds}",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (8000; 0 = any)")
    p.add_argument("--ports", help="many targets in one process, e.g. 9000-9999 or 9000,9002")
    p.add_argument("--count", type=int, help="many targets: N ports from --base-port")
    p.add_argument("--base-port", type=int, default=9000, help="first port for --count (9000)")
    p.add_argument(
        "--model", "--served-model-name", dest="model", default=DEFAULT_MODEL,
        help=f"model id served ({DEFAULT_MODEL})",
    )  # fmt: skip
    p.add_argument("--max-model-len", type=int, default=262144, help="context length (262144)")
    p.add_argument("--api-key", default=os.environ.get("VLLM_API_KEY") or None,
                   help="require 'Authorization: Bearer KEY' on /v1/* (or $VLLM_API_KEY)")  # fmt: skip
    p.add_argument("--startup-seconds", type=float, default=0.0,
                   help="port refuses connections this long at start, like vLLM loading (0)")  # fmt: skip
    p.add_argument("--ttft-seconds", type=float, default=0.05, help="time to first token (0.05)")
    p.add_argument("--token-interval-seconds", type=float, default=0.01,
                   help="time between tokens (0.01)")  # fmt: skip
    p.add_argument("--fast", action="store_true", help="all delays zero (benchmarks)")
    p.add_argument("--admin-port", type=int, default=None,
                   help=f"admin API port on 127.0.0.1 (port + {ADMIN_PORT_OFFSET}; 0 = any)")  # fmt: skip
    p.add_argument("--no-admin", action="store_true", help="no admin API")
    p.add_argument("--fault", action="append", type=_fault_arg, default=[],
                   help="start with this fault on (repeatable)")  # fmt: skip
    p.add_argument("--max-num-seqs", type=int, default=256, help="concurrent requests (256)")
    p.add_argument("--seed", type=int, default=0, help="seed for error_rate draws (0)")
    p.add_argument("--vllm-version", default=VLLM_VERSION, help=f"/version answer ({VLLM_VERSION})")
    p.add_argument("--ready-file", type=Path,
                   help="write {url, port, admin_url, ...} as JSON here once started")  # fmt: skip
    p.add_argument("--exit-after", type=float, default=None,
                   help="exit (code 1) this many seconds after start: a crash loop (off)")  # fmt: skip
    p.add_argument("--supervise", action="store_true",
                   help="run under a supervisor that restarts the simulator when it exits")  # fmt: skip
    add_supervisor_args(p)
    return p


def _ports(args: argparse.Namespace) -> list[int] | None:
    if args.ports:
        return parse_port_range(args.ports)
    if args.count:
        return list(range(args.base_port, args.base_port + args.count))
    return None


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    ports = _ports(args)
    first = ports[0] if ports else args.port
    if args.no_admin:
        admin: int | None = None
    elif args.admin_port is not None:
        admin = args.admin_port
    else:
        admin = first + ADMIN_PORT_OFFSET if 0 < first <= 65535 - ADMIN_PORT_OFFSET else 0
    config = SimulatorConfig(
        host=args.host,
        port=args.port,
        model=args.model,
        max_model_len=args.max_model_len,
        version=args.vllm_version,
        startup_seconds=args.startup_seconds,
        ttft_seconds=args.ttft_seconds,
        token_interval_seconds=args.token_interval_seconds,
        api_key=args.api_key,
        admin_port=admin,
        max_num_seqs=args.max_num_seqs,
        seed=args.seed,
        allow_exit=True,
        faults=tuple(args.fault),
    )
    return config.fast() if args.fast else config


def _raise_fd_limit() -> None:
    """Thousands of ports need thousands of descriptors: use the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(
    config: SimulatorConfig,
    ports: list[int] | None,
    ready_file: Path | None,
    exit_after: float | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if exit_after is not None:
        # a server that dies on its own shortly after every start (OOM while loading, ...)
        loop.call_later(exit_after, os._exit, 1)
    runner: Simulator | SimulatorFarm
    if ports:
        _raise_fd_limit()
        runner = SimulatorFarm(config, ports)
        await runner.start()
        info: dict[str, Any] = {
            "ports": [s.port for s in runner.simulators],
            "urls_from": runner.simulators[0].url,
        }
    else:
        runner = Simulator(config)
        await runner.start()
        info = {"url": runner.url, "port": runner.port}
    info.update(admin_url=runner.admin_url, model=config.model, pid=os.getpid())
    where = info.get("url") or f"{len(info['ports'])} ports from {info['urls_from']}"
    print(
        f"llm-heartbeat simulate: serving {config.model} on {where}"
        f" (admin API: {runner.admin_url or 'off'}; start-up {config.startup_seconds}s)",
        flush=True,
    )
    if ready_file is not None:
        tmp = ready_file.with_name(f".{ready_file.name}.tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(ready_file)
    try:
        await stop.wait()
    finally:
        await runner.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point for `llm-heartbeat simulate ARGS` and `python -m exporter.simulate ARGS`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.exit_after is not None and args.exit_after < 0:
        parser.error("--exit-after must not be negative")
    if args.supervise:
        return supervise_from_args(_child_args(argv), args)
    try:
        config = config_from_args(args)
        ports = _ports(args)
    except ValueError as exc:
        parser.error(str(exc))
    if ports:
        config = replace(config, port=ports[0])
    try:
        asyncio.run(_serve(config, ports, args.ready_file, args.exit_after))
    except OSError as exc:
        print(f"llm-heartbeat simulate: {exc}", file=sys.stderr)
        return 1
    return 0


_SUPERVISOR_VALUE_FLAGS = (
    "--pidfile", "--supervisor-pidfile", "--restart-count-file", "--restart-delay",
    "--max-restarts", "--child-args-file",
)  # fmt: skip


def _child_args(argv: list[str]) -> list[str]:
    """The simulator's own arguments: argv without --supervise and the supervisor's flags."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--supervise", "--no-auto-restart"):
            continue
        name = arg.split("=", 1)[0]
        if name in _SUPERVISOR_VALUE_FLAGS:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out
