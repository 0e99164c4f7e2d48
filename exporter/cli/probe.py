"""`llm-heartbeat probe URL`: one round of checks for a pipeline, with documented exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from exporter.cli.common import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_STARTING,
    EXIT_UNHEALTHY,
    EXIT_USAGE,
    first_error,
)
from exporter.config import TargetConfig

__all__ = ["probe"]


async def probe(args: argparse.Namespace) -> int:
    from exporter.engine.rounds import Verdict, direct_runner, run_round
    from exporter.probes import make_client
    from exporter.probes.results import VERDICT_CHECKS, Check, Reason
    from exporter.server.views import result_view
    from exporter.server.words import check_summary

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
            name="probe",
            url=url,
            model=args.model,
            server=args.server,
            api_key_file=args.api_key_file,
            checks=checks,
        )
    except ValidationError as exc:
        print(f"llm-heartbeat probe: {first_error(exc)}", file=sys.stderr)
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
    unoffered = [r.check.value for r in results if not r.offered]
    proof = any(r.check is Check.CHAT for r in results)
    if unoffered and not proof and found.verdict is Verdict.HEALTHY:
        # nothing left that proves inference: the flags' problem, not the server's
        print(
            f"llm-heartbeat probe: the server does not offer {', '.join(unoffered)} and no "
            "check that proves inference ran: drop --no-chat",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.json:
        out: dict[str, Any] = {"url": target.safe_url, "model": model}
        out |= {"verdict": found.verdict.value, "healthy": found.verdict is Verdict.HEALTHY}
        out["not_offered"] = unoffered
        out["checks"] = {r.check.value: result_view(r) for r in results}
        out["skipped"] = [c.value for c in found.skipped]
        print(json.dumps(out, indent=2))
    else:
        print(f"{target.safe_url}  model={model or '-'}")
        print(f"{'CHECK':<8} {'RESULT':<7} {'HTTP':>4} {'TIME':>8} {'TTFT':>8}  DETAIL")
        for r in results:
            ttft = f"{r.ttft * 1000:.0f}ms" if r.ttft is not None else "-"
            word = "ok" if r.success else _WORDS.get(r.reason or "", "FAIL")
            detail = r.detail if not r.success else (f"answer={r.content!r}" if r.content else "")
            if not r.success and r.reason:
                # the words the exporter's page and API use ("connection refused"), then the
                # raw detail where it says more (a server's own error message)
                said = check_summary(r.reason.value, r.detail, r.status_code)
                raw = "" if r.reason is Reason.CONNECT_ERROR or not detail else f" ({detail})"
                detail = f"{r.reason.value}: {said}{raw}"
            print(
                f"{r.check.value:<8} {word:<7} {r.status_code or '-':>4} "
                f"{r.duration * 1000:>6.0f}ms {ttft:>8}  {detail}"
            )
        for c in found.skipped:
            print(f"{c.value:<8} {'skipped':<7} {'-':>4} {'-':>8} {'-':>8}  verdict already known")
        print(
            {"healthy": "healthy", "starting": "STARTING", "busy": "BUSY (rate limited)"}.get(
                found.verdict, "UNHEALTHY"
            )
        )
    exits = {Verdict.HEALTHY: EXIT_OK, Verdict.STARTING: EXIT_STARTING, Verdict.BUSY: EXIT_BUSY}
    return exits.get(found.verdict, EXIT_UNHEALTHY)


# the RESULT column for failures that are no fault of the server
_WORDS = {"not_offered": "n/a", "rate_limited": "BUSY"}
