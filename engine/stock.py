"""A view of network stock: on hand and reserved units per node and item.

The engine reads it; the batch router and the store change it (reserve,
release, ship). Plain data, no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable


class Levels(dict):
    """(node, sku) -> [on_hand, reserved]: a dict that counts the times a
    row is added, removed or given another list, so that Stock's index of
    rows by item knows when it is out of date (changing a row's counts in
    place does not matter to it: the index holds the lists themselves)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.changes = 0

    def __setitem__(self, key, value):
        if self.get(key) is not value:       # a new row, or a row's counts replaced by another list
            self.changes += 1
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.changes += 1
        super().__delitem__(key)

    def setdefault(self, key, default=None):
        if key not in self:
            self.changes += 1
        return super().setdefault(key, default)

    def update(self, *args, **kwargs):
        self.changes += 1
        super().update(*args, **kwargs)

    def pop(self, *args):
        self.changes += 1
        return super().pop(*args)

    def popitem(self):
        self.changes += 1
        return super().popitem()

    def clear(self):
        self.changes += 1
        super().clear()

    def __ior__(self, other):
        self.changes += 1
        return super().__ior__(other)


@dataclass
class Stock:
    levels: dict[tuple[str, str], list[int]] = field(default_factory=Levels)   # (node, sku) -> [on_hand, reserved]
    used_today: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # node -> units promised today
    # sku -> the nodes with a row for it and that row's counts, as of `levels.changes` == _indexed
    _by_sku: dict[str, list[tuple[str, list[int]]]] = field(default_factory=dict, init=False, repr=False,
                                                           compare=False)
    _indexed: int = field(default=-1, init=False, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.levels, Levels):
            self.levels = Levels(self.levels)

    @classmethod
    def from_rows(cls, rows: Iterable) -> "Stock":
        stock = cls()
        for row in rows:
            node, sku = row.node, row.sku
            level = stock.levels.setdefault((node, sku), [0, 0])
            level[0] += int(row.on_hand)
            level[1] += int(getattr(row, "reserved", 0) or 0)
        return stock

    def copy(self) -> "Stock":
        clone = Stock({k: list(v) for k, v in self.levels.items()})
        clone.used_today.update(self.used_today)
        return clone

    def nodes_with(self, sku: str) -> list[str]:
        """The nodes that have a row for `sku` (any count, even 0)."""
        return [node for node, _ in self.rows_with(sku)]

    def rows_with(self, sku: str) -> list[tuple[str, list[int]]]:
        """(node, [on_hand, reserved]) of every node that has a row for `sku`
        (any count, even 0); the counts are the rows themselves, not copies."""
        levels = self.levels
        if not isinstance(levels, Levels):        # `levels` itself was replaced by a plain dict
            levels = self.levels = Levels(levels)
        if self._indexed != levels.changes:
            by_sku: dict[str, list[tuple[str, list[int]]]] = {}
            for (node, item), level in levels.items():
                if item in by_sku:
                    by_sku[item].append((node, level))
                else:
                    by_sku[item] = [(node, level)]
            self._by_sku, self._indexed = by_sku, levels.changes
        return self._by_sku.get(sku, ())

    def on_hand(self, node: str, sku: str) -> int:
        return self.levels.get((node, sku), (0, 0))[0]

    def reserved(self, node: str, sku: str) -> int:
        return self.levels.get((node, sku), (0, 0))[1]

    def available(self, node: str, sku: str) -> int:
        level = self.levels.get((node, sku))
        return max(0, level[0] - level[1]) if level else 0

    def reserve(self, node: str, sku: str, qty: int) -> None:
        if self.available(node, sku) < qty:
            raise ValueError(f"cannot reserve {qty} of {sku} at {node}: only "
                             f"{self.available(node, sku)} available")
        self.levels[(node, sku)][1] += qty
        self.used_today[node] += qty

    def release(self, node: str, sku: str, qty: int) -> None:
        level = self.levels.get((node, sku))
        if level is not None:
            level[1] = max(0, level[1] - qty)
        self.used_today[node] = max(0, self.used_today.get(node, 0) - qty)

    def total_available(self, sku: str) -> int:
        return sum(max(0, v[0] - v[1]) for (_, s), v in self.levels.items() if s == sku)
