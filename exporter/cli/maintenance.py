"""`llm-heartbeat maintenance start|end|list`: the maintenance API of running exporters.

A maintenance marks a target as being worked on: its probes keep running, its state stays
honest, no shipped alert fires for it and the recovery receiver leaves it alone. Give every
replica with `--url` (announced windows live in each exporter's memory)."""

from __future__ import annotations

import argparse
from typing import Any

from exporter.cli.common import EXIT_OK, EXIT_UNHEALTHY, EXIT_USAGE
from exporter.errors import ConfigError
from exporter.util.http import http_client
from exporter.util.secrets import read_secret

__all__ = ["DEFAULT_URL", "add_parser", "maintenance"]

DEFAULT_URL = "http://127.0.0.1:8001"


def add_parser(sub: Any, duration: Any) -> None:
    """The `maintenance` command and its three actions."""
    m = sub.add_parser(
        "maintenance",
        help="announce, end or list maintenance of targets (alerts and recovery hold off)",
        description="Tell running exporters that a target is being worked on: its probes keep "
        "running, no shipped alert fires for it and the recovery receiver leaves it alone. "
        "Needs the reload token (reload.token_file) or a loopback peer, like /-/reload.",
    )
    actions = m.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="TARGET is in maintenance from now for --for")
    start.add_argument("target")
    start.add_argument("--for", dest="duration", type=duration, required=True, help="30m, 2h")
    start.add_argument("--reason", default="", help="shown on the status page and in the API")
    end = actions.add_parser("end", help="end TARGET's maintenance now (judged afresh)")
    end.add_argument("target")
    actions.add_parser("list", help="the maintenance windows active now")
    for p in (start, end, actions.choices["list"]):
        p.add_argument(
            "--url",
            action="append",
            help=f"an exporter (repeat for every replica; default {DEFAULT_URL})",
        )
        p.add_argument("--token-file", help="file holding the reload token (reload.token_file)")


async def maintenance(args: argparse.Namespace) -> int:
    """Call every exporter given; 0 when all agreed, 1 when one refused or was unreachable."""
    from pathlib import Path

    try:
        token = read_secret(
            Path(args.token_file) if args.token_file else None, None, "--token-file"
        )
    except ConfigError as exc:
        print(f"llm-heartbeat maintenance: {exc}")
        return EXIT_USAGE
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    failed = False
    for url in args.url or [DEFAULT_URL]:
        base = url.rstrip("/")
        try:
            async with http_client(timeout=10.0) as client:
                if args.action == "start":
                    body = {"target": args.target, "duration": args.duration, "reason": args.reason}
                    r = await client.post(f"{base}/api/v1/maintenance", json=body, headers=headers)
                elif args.action == "end":
                    r = await client.delete(
                        f"{base}/api/v1/maintenance/{args.target}", headers=headers
                    )
                else:
                    r = await client.get(f"{base}/api/v1/maintenance")
        except Exception as exc:  # httpx's errors: the exporter is not reachable
            print(f"{base}: not reachable ({type(exc).__name__})")
            failed = True
            continue
        try:
            answer = r.json()
        except ValueError:
            answer = {"error": f"HTTP {r.status_code}"}
        if r.status_code != 200:
            print(f"{base}: refused (HTTP {r.status_code}): {answer.get('error', '')}")
            failed = True
        else:
            print(f"{base}: {_describe(args.action, answer)}")
    return EXIT_UNHEALTHY if failed else EXIT_OK


def _describe(action: str, answer: dict[str, Any]) -> str:
    if action == "start":
        w = answer["maintenance"]
        return f"{w['target']} in maintenance for {w['end'] - w['start']:.0f}s"
    if action == "end":
        return f"{answer['ended']['target']}: maintenance ended; judged on fresh results"
    windows = answer.get("maintenance") or []
    if not windows:
        return "no target in maintenance"
    return "; ".join(
        f"{w['target']} until {w['end'] - answer['now']:.0f}s from now ({w['source']}): "
        f"{w['reason'] or 'no reason given'}"
        for w in windows
    )
