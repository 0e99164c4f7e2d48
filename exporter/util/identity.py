"""A value worked out once per object (a target's config), forgotten with the object.

A probe runs thousands of times a minute for the same few thousand target configs; what it
derives from one (its TLS context and proxy, its secrets) is kept beside it by identity. A
reload or a /probe round makes new configs: the old ones' entries go when they do (a weak
reference), so nothing grows with the number of rounds."""

from __future__ import annotations

import weakref
from typing import Generic, TypeVar

__all__ = ["ByIdentity"]

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    """A map from live objects (by identity, so unhashable ones too) to values."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[K], V]] = {}

    def get(self, obj: K) -> V | None:
        found = self._entries.get(id(obj))
        if found is None or found[0]() is not obj:
            return None
        return found[1]

    def put(self, obj: K, value: V) -> None:
        key = id(obj)
        entries = self._entries

        def forget(ref: weakref.ref[K]) -> None:
            if (kept := entries.get(key)) is not None and kept[0] is ref:
                del entries[key]

        entries[key] = (weakref.ref(obj, forget), value)

    def __len__(self) -> int:
        return len(self._entries)
