"""Sharding without coordination: replica `index` of `count` probes the targets whose name
hashes to `index`.

The hash is bit-identical to Prometheus's `hashmod` relabel action (model/relabel/relabel.go):
the MD5 of the value, its last 8 bytes read as a big-endian unsigned 64-bit integer, modulo
`count`. So a Prometheus job that relabels with

    - source_labels: [target]   # a label holding the target's name
      action: hashmod
      modulus: N
      target_label: __tmp_shard

computes the same shard for a target as `llm-heartbeat run --shard I --shards N` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TypeVar

__all__ = ["hashmod", "owns", "shard_of", "split"]

T = TypeVar("T")


def hashmod(value: str, modulus: int) -> int:
    """Prometheus's hashmod of one label value."""
    if modulus < 1:
        raise ValueError("modulus must be at least 1")
    digest = hashlib.md5(value.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


def shard_of(name: str, count: int) -> int:
    """The shard (0 .. count-1) that probes the target called `name`."""
    return hashmod(name, count)


def owns(name: str, index: int, count: int) -> bool:
    """Whether replica `index` of `count` probes the target called `name`."""
    return count <= 1 or shard_of(name, count) == index


def split(items: Iterable[T], index: int, count: int, *, key: str = "name") -> list[T]:
    """The items (anything with a `name` attribute) that replica `index` owns, in order."""
    return [item for item in items if owns(getattr(item, key), index, count)]
