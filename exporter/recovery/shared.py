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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from exporter.config.recovery import RailsConfig
from exporter.errors import HeartbeatError
from exporter.recovery.rails import Attempt, Decision, TargetRecord, decide

__all__ = ["OWNER", "Change", "FileStore", "SharedRails", "Store", "T"]

OWNER = f"{socket.gethostname()}:{os.getpid()}"
"""This process, as the ledger names it (each receiver adds an id of its own)."""

Ledger = dict[str, list[dict[str, Any]]]
log = logging.getLogger(__name__)
T = TypeVar("T")


Change = Callable[[list[dict[str, Any]]], T]


class Store(Protocol):
    """Where the receivers' attempts are kept: one target's entries read, changed by `change`
    (in place) and written back, atomically against every other receiver."""

    async def update(self, target: str, change: Change[T]) -> T: ...


class FileStore:
    """Replicas on one host: a JSON file under an exclusive `fcntl.flock`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def update(self, target: str, change: Change[T]) -> T:
        return await asyncio.to_thread(self._update, target, change)

    def _update(self, target: str, change: Change[T]) -> T:
        with self._locked() as ledger:
            entries = ledger.setdefault(target, [])
            return change(entries)

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


class SharedRails:
    """The rails over the attempts of every receiver using the same store."""

    def __init__(self, store: Store) -> None:
        self.store, self.owner = store, f"{OWNER}:{uuid.uuid4().hex[:8]}"

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
        attempt is claimed (written) before the store is let go. A store that cannot be used
        stops the action (at most one restart): the error is logged, the attempt skipped."""

        def change(entries: list[dict[str, Any]]) -> Decision:
            decision = _decide(entries, self.owner, record, rails, now)
            if decision.verdict == "go":
                entries.append(
                    {"owner": self.owner, "started_at": now, "rule": rule, "action": action}
                )
            horizon = rails.grace + rails.verify_timeout
            keep = max(rails.window, rails.cooldown, rails.backoff_max, horizon)
            entries[:] = [e for e in entries if e["started_at"] > now - keep][-50:]
            return decision

        try:
            return await self.store.update(target, change)
        except (OSError, HeartbeatError) as exc:
            log.error("the shared rails cannot be used: %s", _why(exc))
            return Decision("skipped_in_progress", reason="the shared rails cannot be used")

    async def release(self, target: str, started_at: float, attempt: Attempt | None) -> None:
        """The claim made at `started_at` ends: with the attempt's outcome, or dropped (no
        action was taken: the re-probe found the server healthy, starting or busy)."""

        def change(entries: list[dict[str, Any]]) -> None:
            for entry in entries:
                if entry.get("owner") == self.owner and entry["started_at"] == started_at:
                    if attempt is None or attempt.result is None:
                        entries.remove(entry)
                    else:
                        entry["finished_at"] = attempt.ended_at
                        entry["result"] = attempt.result
                    return

        try:
            await self.store.update(target, change)
        except (OSError, HeartbeatError) as exc:
            log.error("the shared rails cannot be used: %s", _why(exc))


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


def _decide(
    entries: list[dict[str, Any]], owner: str, record: TargetRecord, rails: RailsConfig, now: float
) -> Decision:
    """decide() over this receiver's record and the other receivers' entries."""
    others = [e for e in entries if e.get("owner") != owner]
    horizon = rails.grace + rails.verify_timeout
    if any(e.get("finished_at") is None and now - e["started_at"] < horizon for e in others):
        return Decision(
            "skipped_in_progress", reason="another replica's receiver is recovering this target"
        )
    merged = TargetRecord(
        attempts=sorted(
            [*record.attempts, *(_attempt(e) for e in others if e.get("result"))],
            key=lambda a: a.started_at,
        ),
        exhausted=record.exhausted,
        busy=record.busy,
    )
    return decide(merged, now, rails)


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
