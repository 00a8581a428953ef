"""Values worked out once per object and kept: the network's nodes and
carriers, catalogs and playbook effects do not change once loaded, so what
is derived from them is kept by the object's id, with the object itself
beside it (an id that a new object reuses is never taken for the old one)."""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")
V = TypeVar("V")


def kept(cache: dict[int, tuple], thing: T, make: Callable[[T], V], limit: int = 100_000) -> V:
    """make(thing), worked out once and kept in `cache` (emptied past `limit` entries)."""
    hit = cache.get(id(thing))
    if hit is None or hit[0] is not thing:
        if len(cache) >= limit:
            cache.clear()
        hit = cache[id(thing)] = (thing, make(thing))
    return hit[1]
