"""A target's last probe results for the status page's sparklines, kept packed.

A deque of 60 five-key dicts cost ~20 KB per target (~100 MB at 5,000 targets, issue 16); the
same entries packed into one bytearray cost 1.1 KB and are one object the cyclic GC never
walks. The dicts the views show are made only when a view reads them (`list(recent)`), with
the same keys and values as before."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from typing import Any, overload

from exporter.probes.results import Check

__all__ = ["RECENT", "Recent", "RecentEntries"]

RECENT = 60

# time, duration, ttft (NaN: none), check index, success: 18 bytes (the two durations are
# rounded to 0.1 ms, which a float32 keeps: read back and rounded again, the same numbers)
_ENTRY = struct.Struct("=dffB?")
_LONGEST = 1e9  # seconds: more would not fit a float32 (no probe lasts 30 years)
_CHECKS = tuple(Check)
_INDEX = {c: i for i, c in enumerate(_CHECKS)}


class Recent:
    """The last `size` entries (oldest first when read), in a fixed-size ring of packed
    records: `append` never allocates once the ring is full."""

    __slots__ = ("_buf", "_next", "size")

    def __init__(self, size: int = RECENT) -> None:
        self.size = max(size, 1)
        self._buf = bytearray()  # grows to size * _ENTRY.size, then wraps
        self._next = 0  # the slot the next entry goes to once full

    def __len__(self) -> int:
        return len(self._buf) // _ENTRY.size

    def append(
        self, time: float, check: Check, success: bool, duration: float, ttft: float | None
    ) -> None:
        """Keep one result (duration and TTFT rounded to 0.1 ms, as the views show them)."""
        record = _ENTRY.pack(
            time,
            round(min(duration, _LONGEST), 4),
            math.nan if ttft is None else round(min(ttft, _LONGEST), 4),
            _INDEX[check],
            success,
        )
        if len(self) < self.size:
            self._buf += record
            return
        start = self._next * _ENTRY.size
        self._buf[start : start + _ENTRY.size] = record  # same length: in place
        self._next = (self._next + 1) % self.size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The entries as the views show them, oldest first."""
        return iter(self.snapshot())

    def snapshot(self) -> RecentEntries:
        """The entries as they are now, still packed (one bytes copy): a view of 10,000
        targets holds 10,000 of these, not 600,000 dicts (issue 26: ~100 MB a snapshot)."""
        split = self._next * _ENTRY.size
        return RecentEntries(bytes(self._buf[split:] + self._buf[:split]))


class RecentEntries(Sequence[dict[str, Any]]):
    """A frozen copy of a target's recent entries, read as dicts (oldest first) one at a
    time: `safe_json` encodes it as the list it reads as, a target at a time."""

    __slots__ = ("_packed",)

    def __init__(self, packed: bytes) -> None:
        self._packed = packed

    def __len__(self) -> int:
        return len(self._packed) // _ENTRY.size

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return list(self)[index]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(index)
        return _entry(*_ENTRY.unpack_from(self._packed, (index % n) * _ENTRY.size))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for fields in _ENTRY.iter_unpack(self._packed):
            yield _entry(*fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecentEntries):
            return self._packed == other._packed
        return isinstance(other, list) and list(self) == other

    __hash__ = None  # type: ignore[assignment]


def _entry(time: float, duration: float, ttft: float, check: int, success: bool) -> dict[str, Any]:
    return {
        "time": time,
        "check": _CHECKS[check].value,
        "success": success,
        "duration": round(duration, 4),
        "ttft": None if math.isnan(ttft) else round(ttft, 4),
    }
