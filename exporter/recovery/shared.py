"""Rails shared by the recovery receivers of several exporter replicas on one host.

Alertmanager delivers a webhook to every replica (or a Service balances repeats over them).
Each receiver's re-probe sees the server down while the other one restarts it (connection
refused is not "starting" to a replica that did not begin the grace period), so the re-probe
alone would restart it twice. The receivers therefore decide on one ledger: a JSON file of
attempts per target, read and written under an exclusive `fcntl.flock`. A claim (an attempt
begun, not finished) keeps the other receivers out; finished attempts count for everyone's
cooldown, backoff and `max_attempts`. A claim older than the longest an attempt can take
(`grace` + `verify_timeout`) is a crashed replica's and no longer holds anyone back.
In a cluster the replicas share no file: there, docs/ha.md, a Kubernetes Lease plays this part.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from exporter.config.recovery import RailsConfig
from exporter.recovery.rails import Attempt, Decision, TargetRecord, decide

__all__ = ["OWNER", "SharedRails"]

OWNER = f"{socket.gethostname()}:{os.getpid()}"
"""This process, as the ledger names it (each receiver adds an id of its own)."""

Ledger = dict[str, list[dict[str, Any]]]
log = logging.getLogger(__name__)


class SharedRails:
    """The attempts of every receiver using `path`, per target."""

    def __init__(self, path: Path) -> None:
        self.path, self.owner = path, f"{OWNER}:{uuid.uuid4().hex[:8]}"

    async def claim(
        self,
        target: str,
        record: TargetRecord,
        rails: RailsConfig,
        rule: str,
        action: str,
        now: float,
    ) -> Decision:
        """The rails over this receiver's attempts and every other receiver's; on `go` the
        attempt is claimed (written) before the lock is let go. A ledger that cannot be used
        stops the action (at most one restart): the error is logged, the attempt skipped."""
        try:
            return await asyncio.to_thread(self._claim, target, record, rails, rule, action, now)
        except OSError as exc:
            log.error("rails.shared_file %s cannot be used: %s", self.path, exc.strerror)
            return Decision("skipped_in_progress", reason="the shared rails file cannot be used")

    async def release(self, target: str, started_at: float, attempt: Attempt | None) -> None:
        """The claim made at `started_at` ends: with the attempt's outcome, or dropped (no
        action was taken: the re-probe found the server healthy, starting or busy)."""
        try:
            await asyncio.to_thread(self._release, target, started_at, attempt)
        except OSError as exc:
            log.error("rails.shared_file %s cannot be used: %s", self.path, exc.strerror)

    # ---- under the lock -------------------------------------------------------------------
    def _claim(
        self,
        target: str,
        record: TargetRecord,
        rails: RailsConfig,
        rule: str,
        action: str,
        now: float,
    ) -> Decision:
        horizon = rails.grace + rails.verify_timeout
        with self._locked() as ledger:
            entries = ledger.setdefault(target, [])
            others = [e for e in entries if e.get("owner") != self.owner]
            if any(
                e.get("finished_at") is None and now - e["started_at"] < horizon for e in others
            ):
                return Decision(
                    "skipped_in_progress",
                    reason="another replica's receiver is recovering this target",
                )
            merged = TargetRecord(
                attempts=sorted(
                    [*record.attempts, *(_attempt(e) for e in others if e.get("result"))],
                    key=lambda a: a.started_at,
                ),
                exhausted=record.exhausted,
                busy=record.busy,
            )
            decision = decide(merged, now, rails)
            if decision.verdict == "go":
                entries.append(
                    {"owner": self.owner, "started_at": now, "rule": rule, "action": action}
                )
            keep = max(rails.window, rails.cooldown, rails.backoff_max, horizon)
            ledger[target] = [e for e in entries if e["started_at"] > now - keep][-50:]
            return decision

    def _release(self, target: str, started_at: float, attempt: Attempt | None) -> None:
        with self._locked() as ledger:
            entries = ledger.get(target, [])
            for entry in entries:
                if entry.get("owner") == self.owner and entry["started_at"] == started_at:
                    if attempt is None or attempt.result is None:
                        entries.remove(entry)
                    else:
                        entry["finished_at"] = attempt.ended_at
                        entry["result"] = attempt.result
                    break

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Ledger]:
        """The ledger, read and written back under an exclusive lock on the file itself."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            ledger = _parse(f.read())
            yield ledger
            f.seek(0)
            f.truncate()
            f.write(json.dumps(ledger, separators=(",", ":")))
            f.flush()
            os.fsync(f.fileno())


def _parse(text: str) -> Ledger:
    """A damaged or foreign file is an empty ledger, not a crash (the rails start over)."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): [
            e for e in v if isinstance(e, dict) and isinstance(e.get("started_at"), float | int)
        ]
        for k, v in data.items()
        if isinstance(v, list)
    }


def _attempt(entry: dict[str, Any]) -> Attempt:
    finished = entry.get("finished_at")
    return Attempt(
        started_at=float(entry["started_at"]),
        rule=str(entry.get("rule", "")),
        action=str(entry.get("action", "")),
        finished_at=float(finished) if isinstance(finished, float | int) else None,
        result=str(entry["result"]) if entry.get("result") is not None else None,
    )
