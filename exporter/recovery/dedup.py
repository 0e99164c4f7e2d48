"""Bounded memory of alert episodes already handled (fingerprint + startsAt)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["Dedup"]


class Dedup:
    """An LRU set: Alertmanager's retries and repeats of one episode hit it; old ones fall out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        return False

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        self._keys.pop(key, None)
