"""Per-process CPU and memory from /proc, so each process is charged only for itself."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcSample", "children", "cpu_seconds", "peak_rss_mib", "sample"]

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu: float  # user + system seconds since the process started
    rss_mib: float
    peak_rss_mib: float


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _status_kib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return 0.0


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the peak resident set size."""
    return _status_kib(pid, "VmHWM") / 1024


def sample(pids: list[int]) -> ProcSample:
    """CPU and memory summed over a group of processes (e.g. nginx's master and workers)."""
    cpu = rss = peak = 0.0
    for pid in pids:
        try:
            cpu += cpu_seconds(pid)
            rss += _status_kib(pid, "VmRSS") / 1024
            peak += peak_rss_mib(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return ProcSample(cpu, rss, peak)


def children(pid: int) -> list[int]:
    """Direct children of a process (nginx's workers)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return out
