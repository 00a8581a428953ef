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

With `needs` (the order's units per sku; given for an order that was
routed, of at most allocator's exact-search lines), a row of S may also
differ when the decision cannot see it:

* both views keep at least the order's units of that sku at the node after
  every keep rule of the playbook (so the node has the units for every line
  of the order, nothing is kept back, and the allocator, which reads
  stock only as "enough for this" or "none", sees the same);
* every condition of the playbook that reads stock.* (against constants)
  gives the same answer on both rows, and none compares stock.* with
  another fact or copies it (`set`);
* the node's capacity left caps nothing (it is no smaller than the order's
  units in both views).

When this returns True, routing on `after` gives the same decision, byte for
byte, as routing on `before` (tests/test_recheck.py holds it to that).
"""

from __future__ import annotations

from collections.abc import Mapping

from dsl.compiler import AllOf, AnyOf, Check, Cond, NotOf, Rulebook
from . import fastmatch
from ._kept import kept
from ._search import MAX_CHUNKS
from .matching import _check
from .facts import _load, _node_facts, _nodes_with_reasons
from .router import capacity_left
from .models import Network
from .stock import Stock


def decides_alike(rulebook: Rulebook, network: Network, before: Stock, after: Stock,
                  skus: list[str] | set[str], units: int | None = None,
                  needs: Mapping[str, int] | None = None) -> bool:
    """True when every order over `skus` of at most `units` units in all
    (None: any number) gets the same decision from
    `route(rulebook, network, catalog, stock, order)` with stock `before`
    as with `after` (both views holding at least the rows of `skus`).
    `skus` are the catalog's skus the order's lines resolve to, not the
    names (aliases) the order uses; `needs` (sku -> units; see the module
    doc) lets rows of them differ where the decision cannot see it."""
    was_levels, now_levels = before.levels, after.levels
    if was_levels != now_levels:
        wanted = set(skus)
        for key in was_levels.keys() | now_levels.keys():
            old, new = was_levels.get(key), now_levels.get(key)
            if old != new and key[1] in wanted and not _unseen(rulebook, network, before, after, key[0],
                                                               old, new, needs, key[1], units):
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


STOCK_FACTS = ("stock.on_hand", "stock.reserved", "stock.available")
EXACT_LINES = MAX_CHUNKS        # `needs` only for orders of at most this many lines


class _StockReads:
    """What a playbook reads of the stock: its stock.* checks against
    constants, the most units its keep rules can hold back at one node for
    one item, and whether it reads stock.* in any other way (`opaque`)."""

    def __init__(self, rulebook: Rulebook):
        self.checks: list[Check] = []
        self.opaque = False
        self.keep = 0
        conditions: list[Cond] = [rule.condition for rule in rulebook.rules] + list(rulebook.groups.values())
        while conditions:
            item = conditions.pop()
            if isinstance(item, Check):
                if item.ref in STOCK_FACTS:
                    self.opaque = True
                elif item.key in STOCK_FACTS:
                    if item.ref is not None:
                        self.opaque = True
                    else:
                        self.checks.append(item)
            elif isinstance(item, NotOf):
                conditions.append(item.item)
            elif isinstance(item, (AllOf, AnyOf)):
                conditions.extend(item.items)
        for rule in rulebook.rules:
            for effect in rule.effects:
                if effect.ref in STOCK_FACTS or effect.field in STOCK_FACTS:
                    self.opaque = True
                if effect.kind == "keep":
                    if effect.amount is None:
                        self.opaque = True
                    else:
                        self.keep += max(0, int(effect.amount))


_READS: dict = {}


def _unseen(rulebook: Rulebook, network: Network, before: Stock, after: Stock, node_id: str,
            old: list[int] | None, new: list[int] | None, needs: Mapping[str, int] | None,
            sku: str, units: int | None) -> bool:
    """True when the change of one row of the order's items, old -> new
    ([on hand, reserved]), cannot change the decision (the module doc)."""
    if needs is None or old is None or new is None or units is None:
        return False
    reads = kept(_READS, rulebook, _StockReads)
    need = needs.get(sku)
    if reads.opaque or need is None:
        return False
    if min(old[0] - old[1], new[0] - new[1]) - reads.keep < need:
        return False
    spot = _nodes_with_reasons(network, frozenset())[1].get(node_id)
    if spot is not None and spot[1].capacity:
        node = spot[1]
        for used in (before.used_today, after.used_today):
            room = capacity_left(node.capacity, _load(node, used))
            if room is not None and room < units:
                return False
    facts = [{"stock.on_hand": level[0], "stock.reserved": level[1], "stock.available": level[0] - level[1]}
             for level in (old, new)]
    return all(_check(check, facts[0]) == _check(check, facts[1]) for check in reads.checks)
