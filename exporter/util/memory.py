"""Give freed memory back to the operating system (glibc only; elsewhere a no-op).

The read views of 10,000 targets are tens of megabytes of short-lived objects per snapshot
(the API's JSON alone is ~15 MB, its object tree twice that, and the /metrics text ~19 MB).
glibc keeps what Python frees: after a large block is freed it raises its own thresholds
(mmap and trim, "dynamic mmap threshold"), so later large blocks come from the heap and the
heap is never trimmed. Polled every 5 s, RSS went 136 -> ~720 MB and stayed ~650 MB with no
client (issue 26; bench/viewpoll.py). Two calls bound it:

- `tune_allocator()` at start: fixed thresholds (128 KiB, glibc's defaults, made fixed), so a
  large block is always mapped on its own and unmapped when freed, and the heap's free top
  is returned past 128 KiB;
- `release()` after a snapshot is let go: `malloc_trim(0)`, which also returns free pages
  inside the heap (7-30 ms at 10,000 targets; called from a worker thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["release", "tune_allocator"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 128 * 1024


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - present in glibc only (musl has none)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def tune_allocator() -> bool:
    """Fixed malloc thresholds (see the module's docstring); False where not glibc."""
    if _LIBC is None:
        return False
    ok = bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    ok = bool(_LIBC.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)) and ok
    return ok


def release() -> None:
    """Return the allocator's free pages to the operating system (glibc's malloc_trim)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
