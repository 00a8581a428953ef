"""Cheaper "not chosen" comparisons for the router.

The router explains every eligible node a plan does not use by the best plan
that would use it: `allocator.solve(problem, require_node=n)`, one full search
per node (up to router.COMPARE_LIMIT of them). On a network of a hundred
nodes that is most of the time spent on an order. Two shortcuts:

* `forced(problem, node, plan)` gives the same message as the forced search
  for a one-line order whenever it can prove it cheaply: under "cost", the
  node ships the whole line alone and no split can be as cheap (the bound
  the allocator's own one-line fast path uses); under any objective, the
  node's pair is avoided, the chosen plan avoids nothing and the node can
  ship the line alone (so the message is the avoidance, whatever the
  cost). Otherwise it runs the forced search. The messages stay exact.
* `is_big(problem, eligible)` says when the comparisons are estimated instead:
  an order of two or more lines (or one line under "speed" or "balanced")
  with more than EXACT_NODES eligible unused nodes. Then `estimate` prices one
  concrete alternative per node: the chosen plan with one whole line moved to
  that node (the cheapest such move), and says so in the message ("shipping
  SKU from it instead costs $X more"); a node that can take no whole line
  gets "more costly than …". These are statements about a real plan, not the
  best plan with that node, which can be cheaper.
"""

from __future__ import annotations

from . import allocator as alloc
from ._search import EPS, INF, pick_carrier
from .decision import cents

EXACT_NODES = 12        # eligible unused nodes compared exactly on any order
SHORTCUTS = True        # False: one full forced search per node, as before (differential tests)


def is_big(problem, eligible: list[str]) -> bool:
    if not SHORTCUTS or len(eligible) <= EXACT_NODES:
        return False
    return len(problem.lines) > 1 or problem.objective != "cost"


def forced(problem, node_id: str, plan=None):
    """The plan allocator.solve(problem, require_node=node_id) would return,
    or one that gives the same message: the same value, avoided count and
    days; or, when every plan with the node uses an avoided pair and the
    chosen `plan` none, any plan with the node."""
    if SHORTCUTS and len(problem.lines) == 1:
        if plan is not None and plan.avoided == 0:
            other = _one_line_avoided(problem, node_id)
            if other is not None:
                return other
        if problem.objective == "cost":
            other = _one_line_forced(problem, node_id)
            if other is not None:
                return other
    return alloc.solve(problem, require_node=node_id)


def _one_line_avoided(problem, node_id: str):
    """A plan shipping the one line from `node_id` alone, when that pair is
    avoided (so every plan with the node avoids at least one pair)."""
    line = problem.lines[0]
    mine = [c for c in problem.candidates if c.node == node_id]
    if len(mine) != 1 or not mine[0].avoided or line.qty < 1 or line.weight < 0:
        return None
    limit = 1 if problem.ship_complete else problem.max_shipments
    opts = problem.carriers.get(node_id)
    if (limit is not None and limit < 1) or not opts or problem.stock.get((node_id, line.sku), 0) < line.qty:
        return None
    kg = line.qty * line.weight
    fixed, per_kg, days, carrier = pick_carrier([(o.fixed, o.per_kg, o.days, o.carrier) for o in opts], kg)
    ship = alloc.Shipment(node_id, carrier, ((line.index, line.qty),), kg, fixed + per_kg * kg, days)
    return alloc.Plan((ship,), ship.cost + mine[0].adjust, ship.cost, days, 1, False)


def _one_line_forced(problem, node_id: str):
    line = problem.lines[0]
    if line.qty < 1 or line.weight < 0:
        return None
    mine = [c for c in problem.candidates if c.node == node_id]
    if len(mine) != 1 or mine[0].line != line.index or mine[0].avoided:
        return None
    cand = mine[0]
    limit = 1 if problem.ship_complete else problem.max_shipments
    if limit is not None and limit < 1:
        return None
    opts = problem.carriers.get(node_id)
    if not opts or problem.stock.get((node_id, line.sku), 0) < line.qty:
        return None
    # Every split over two or more nodes costs at least this (as in allocator._one_line).
    kg = line.qty * line.weight
    fixes, pmin, prefs, seen = [], INF, [], set()
    for c in problem.candidates:
        if c.line != line.index or c.node in seen:
            return None
        seen.add(c.node)
        options = problem.carriers.get(c.node)
        if not options or problem.stock.get((c.node, line.sku), 0) <= 0:
            continue
        fixes.append(min(o.fixed for o in options))
        pmin = min([pmin] + [o.per_kg for o in options])
        if c.adjust < 0:
            prefs.append(c.adjust)
    if not fixes or min(fixes) < 0:
        return None
    fixed, per_kg, days, carrier = pick_carrier([(o.fixed, o.per_kg, o.days, o.carrier) for o in opts], kg)
    cost = fixed + per_kg * kg
    value = cost + cand.adjust
    if limit is None or limit >= 2:
        two = sorted(fixes)[:2]
        if len(two) == 2 and sum(two) + problem.split_penalty + kg * pmin + sum(sorted(prefs)[:line.qty]) \
                <= value + EPS:
            return None
    ship = alloc.Shipment(node_id, carrier, ((line.index, line.qty),), kg, cost, days)
    return alloc.Plan((ship,), value, cost, days, 0, True)


def estimate(problem, plan, eligible: list[str], avoid_notes: dict[str, str], than: str,
             sku_of: dict[int, str]) -> dict[str, str]:
    """Messages for big orders: the best one-line move to each node."""
    lines = {ln.index: ln for ln in problem.lines}
    pairs = {(c.line, c.node): c for c in problem.candidates}
    limit = 1 if problem.ship_complete else problem.max_shipments
    carried = {}                              # line -> the one shipment carrying all of it
    split_lines = set()
    for number, ship in enumerate(plan.shipments):
        for index, qty in ship.lines:
            if index in carried or qty != lines[index].qty:
                split_lines.add(index)
            carried[index] = number
    base = [(s.node, s.cost, s.days, s.weight, dict(s.lines)) for s in plan.shipments]
    max_days = plan.days if problem.objective == "speed" else None
    out = {}
    for node_id in eligible:
        opts = [(o.fixed, o.per_kg, o.days, o.carrier) for o in problem.carriers.get(node_id, ())]
        best = None
        for index, ln in lines.items():
            cand = pairs.get((index, node_id))
            if cand is None or not opts or index in split_lines or index not in carried:
                continue
            if problem.stock.get((node_id, ln.sku), 0) < ln.qty:
                continue
            source = carried[index]
            src_node, _, _, src_kg, src_lines = base[source]
            shipments = len(base) + (0 if len(src_lines) == 1 else 1)
            if limit is not None and shipments > limit:
                continue
            kg = ln.qty * ln.weight
            total, days = 0.0, 0
            for number, (node, cost, ship_days, weight, _) in enumerate(base):
                if number == source:
                    if len(src_lines) == 1:
                        continue
                    src_opts = [(o.fixed, o.per_kg, o.days, o.carrier) for o in problem.carriers[node]]
                    f, p, d, _ = _pick(src_opts, weight - kg, max_days)
                    cost, ship_days = f + p * (weight - kg), d
                total += cost
                days = max(days, ship_days)
            f, p, d, _ = _pick(opts, kg, max_days)
            total += f + p * kg
            days = max(days, d)
            adjust = sum(pairs[(i, n)].adjust for n_, (n, _, _, _, ls) in enumerate(base) for i in ls
                         if not (n_ == source and i == index)) + cand.adjust
            avoided = plan.avoided - int(pairs[(index, src_node)].avoided) + int(cand.avoided)
            value = total + problem.split_penalty * max(shipments - 1, 0) + adjust
            if problem.objective == "balanced":
                value += problem.day_value * days
            key = (avoided, days if problem.objective == "speed" else 0, value, index)
            if best is None or key < best[0]:
                best = (key, index)
        if best is None:
            out[node_id] = "not chosen: more costly than " + than
            continue
        (avoided, days, value, index), _ = best
        if avoided > plan.avoided:
            out[node_id] = "not chosen: " + avoid_notes.get(node_id, "avoided by a rule")
            continue
        if problem.objective == "speed":
            slower = days - plan.days
            if slower > 0:
                out[node_id] = (f"not chosen: shipping {sku_of[index]} from it instead is {slower} "
                                f"day{'s' if slower != 1 else ''} slower")
                continue
        delta = value - plan.value
        out[node_id] = (f"not chosen: shipping {sku_of[index]} from it instead costs "
                        f"${cents(max(delta, 0.0)):,.2f} more")
    return out


def _pick(opts, kg, max_days):
    """The allocator's carrier choice; under "speed" only options as fast as
    the chosen plan when there are any."""
    if max_days is not None:
        fast = [o for o in opts if o[2] <= max_days]
        opts = fast or [o for o in opts if o[2] == min(x[2] for x in opts)]
    return pick_carrier(opts, kg)
