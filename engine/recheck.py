"""decides_alike(): may a decision made on one view of the stock be used
with another?

The service routes an order before it takes the write lock (so that two
workers route at once) and checks, under the lock, that what the decision
was made on has not changed in a way that matters. `route` is a pure
function of (playbook, network, catalog, stock, order); the playbook,
network and catalog are compared by the caller. Of the stock, an order
over items S reads:

* the on-hand and reserved units of S at every node (availability, keep
  rules, the allocator): they must be equal;
* the units promised today at the nodes that hold S, through `node.load`
  (when the node has a capacity): loads may differ as long as no node
  crosses full capacity (the router's "over capacity today") and every
  node-only condition that reads node.load gives the same answer, and
  the capacity left (which caps the units a node may ship) is the same or
  no smaller than the order's units in both. A
  playbook that reads node.load anywhere else (mixed with other facts, or
  in `set ... to node.load`) needs equal loads.

When this returns True, routing on `after` gives the same decision, byte for
byte, as routing on `before` (tests/test_recheck.py holds it to that).
"""

from __future__ import annotations

from dsl.compiler import Rulebook
from . import fastmatch
from .facts import _load, _node_facts, _nodes_with_reasons
from .router import capacity_left
from .models import Network
from .stock import Stock


def decides_alike(rulebook: Rulebook, network: Network, before: Stock, after: Stock,
                  skus: list[str] | set[str], units: int | None = None) -> bool:
    """True when every order over `skus` of at most `units` units in all
    (None: any number) gets the same decision from
    `route(rulebook, network, catalog, stock, order)` with stock `before`
    as with `after` (both views holding at least the rows of `skus`).
    `skus` are the catalog's skus the order's lines resolve to, not the
    names (aliases) the order uses."""
    for sku in skus:
        rows = set(before.nodes_with(sku)) | set(after.nodes_with(sku))
        for node_id in rows:
            if before.levels.get((node_id, sku)) != after.levels.get((node_id, sku)):
                return False
    was, now = before.used_today, after.used_today
    moved = {n for n in set(was) | set(now) if was.get(n, 0) != now.get(n, 0)}
    if not moved:
        return True
    holders = set()
    for sku in skus:
        holders.update(after.nodes_with(sku))
    moved &= holders
    if not moved:
        return True
    _, position = _nodes_with_reasons(network, frozenset())
    comp = None
    for node_id in sorted(moved):
        spot = position.get(node_id)
        if spot is None or not spot[1].capacity:
            continue                        # not in the network, or its load does not count units
        node = spot[1]
        old, new = _load(node, was), _load(node, now)
        if old == new:
            continue
        if (old >= 1.0) != (new >= 1.0):
            return False
        # the capacity left caps what the node may ship of the order
        left_old, left_new = capacity_left(node.capacity, old), capacity_left(node.capacity, new)
        if left_old != left_new and (units is None or min(left_old, left_new) < units):
            return False
        if comp is None:
            comp = fastmatch.compiled(rulebook)
            if comp.load_elsewhere:
                return False
        if comp.load_tests:
            old_facts, new_facts = _node_facts(node, was), _node_facts(node, now)
            for test in comp.load_tests:
                if bool(test(None, None, old_facts)) != bool(test(None, None, new_facts)):
                    return False
    return True
