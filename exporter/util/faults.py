"""The exporter's own faults: what failed on our side before a request reached a target.

The first rule of the project: the monitor never reports its own fault as a broken server. A
secret file that cannot be read, a bug inside a probe, a deadline missed because our own loop
was held: none of them is a target's state or a reason to restart anything. Each is counted
here (`llm_exporter_errors_total{kind}`), and the ones still open are listed with the file and
the field they concern (the status page and `/api/v1/targets` show them as the exporter's).

One book per process (`FAULTS`): a secret file is read deep inside a target's config, where no
runtime object reaches, and the process has one exporter."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["FAULTS", "Fault", "FaultBook", "FaultKind"]

MAX_OPEN = 1000  # open problems kept (one per file or target/check): a bound, not a budget


class FaultKind(StrEnum):
    """The `kind` label of `llm_exporter_errors_total`: a closed set alerts can rely on."""

    SECRET_FILE = "secret_file"  # a key, token or TLS file unreadable or empty
    PROBE_BUG = "probe_bug"  # an exception inside a probe before the target answered
    LOOP_HELD = "loop_held"  # a deadline missed while our own event loop was held


@dataclass(frozen=True, slots=True)
class Fault:
    """One open problem of the exporter: what, where (the file and the field, or the target
    and the check), since when, and the words for a human."""

    kind: FaultKind
    key: str
    detail: str
    since: float
    last: float
    file: str | None = None
    field: str | None = None
    target: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "detail": self.detail,
            "file": self.file,
            "field": self.field,
            "target": self.target,
            "since": self.since,
            "last": self.last,
        }


class FaultBook:
    """Counts of every fault by kind, and the problems still open (cleared once the same
    file reads again, or the same check runs cleanly)."""

    def __init__(self) -> None:
        self.counts: Counter[FaultKind] = Counter()
        self.open: dict[str, Fault] = {}

    def raised(
        self,
        kind: FaultKind,
        key: str,
        detail: str,
        *,
        file: str | None = None,
        field: str | None = None,
        target: str | None = None,
        now: float | None = None,
    ) -> bool:
        """Count one fault and keep it open under `key`; True when it was not open yet."""
        now = time.time() if now is None else now
        self.counts[kind] += 1
        before = self.open.get(key)
        if before is None and len(self.open) >= MAX_OPEN:
            return False  # counted, not listed: a flood of problems must not grow us
        since = before.since if before is not None else now
        self.open[key] = Fault(kind, key, detail, since, now, file, field, target)
        return before is None

    def cleared(self, key: str) -> bool:
        """The problem under `key` is over; True when one was open."""
        return self.open.pop(key, None) is not None

    def for_target(self, name: str, files: tuple[str, ...] = ()) -> list[Fault]:
        """The open problems that concern a target: its own, and its secret files'."""
        return [f for f in self.open.values() if f.target == name or (f.file in files)]

    def retain(self, targets: Container[str], files: Container[str]) -> None:
        """Forget the open problems of targets and files no longer configured (a reload or
        discovery removed them): nothing will ever clear them otherwise."""
        for key, f in list(self.open.items()):
            if (f.target is not None and f.target not in targets) or (
                f.target is None and f.file is not None and f.file not in files
            ):
                del self.open[key]

    def clear(self) -> None:
        """Forget everything (tests; a process has one book)."""
        self.counts.clear()
        self.open.clear()


FAULTS = FaultBook()
