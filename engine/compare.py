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
  cost); under "speed", the node can ship the line alone and its fastest
  carrier is slower than the chosen plan (every plan with it is at least
  that slow, so the message is the days). Otherwise it runs the forced
  search. The messages stay exact.
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
from .decision import cents, money

_new = tuple.__new__     # a named tuple without the Python-level __new__ (hot paths)

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
    chosen `plan` none, any plan with the node; or, under "speed", when the
    node is slower than the chosen plan, a plan with the forced one's days."""
    if SHORTCUTS and len(problem.lines) == 1:
        one = _OneLine.of(problem)
        other = one.forced(node_id, plan)
        if other is not None:
            return other
    return alloc.solve(problem, require_node=node_id)


class _OneLine:
    """What every forced comparison of one one-line problem shares."""

    _last: tuple = (None, None)

    @classmethod
    def of(cls, problem) -> "_OneLine":
        last = cls._last            # read once: another thread may set it meanwhile
        if last[0] is not problem:
            last = cls._last = (problem, cls(problem))
        return last[1]

    def __init__(self, problem):
        self.problem = problem
        line = self.line = problem.lines[0]
        self.ok = line.qty >= 1 and line.weight >= 0
        self.limit = 1 if problem.ship_complete else problem.max_shipments
        self.kg = line.qty * line.weight
        self.by_node: dict[str, list] = {}
        for c in problem.candidates:
            self.by_node.setdefault(c.node, []).append(c)
        # A split over two or more nodes is bounded below by the cheapest fixed
        # costs, the cheapest rate per kg and the preferences (as in
        # allocator._one_line); `valid` is False when that does not apply.
        seen, self.valid, self.floors = set(), True, {}
        for c in problem.candidates:
            if c.line != line.index or c.node in seen:
                self.valid = False
                return
            seen.add(c.node)
        self.adjusts = sorted((c.adjust, c.node) for c in problem.candidates)

    def floor(self, day_limit):
        """(cheapest fixed cost per node, cheapest rate per kg) over the
        carriers with days <= day_limit (None: all) of nodes with stock."""
        known = self.floors.get(day_limit)
        if known is None:
            fixes, pmin = {}, INF
            problem, sku = self.problem, self.line.sku
            for node, cands in self.by_node.items():
                options = [o for o in problem.carriers.get(node) or ()
                           if day_limit is None or o.days <= day_limit]
                if not options or problem.stock.get((node, sku), 0) <= 0:
                    continue
                fixes[node] = min(o.fixed for o in options)
                pmin = min([pmin] + [o.per_kg for o in options])
            known = self.floors[day_limit] = (fixes, pmin)
        return known

    def no_split_beats(self, node_id: str, value: float, day_limit) -> bool:
        """True when every plan of two or more shipments that uses `node_id`
        (with carriers of days <= day_limit) is worse than `value`."""
        if self.line.qty == 1 or (self.limit is not None and self.limit < 2):
            return True             # one unit cannot be split; or no second shipment allowed
        fixes, pmin = self.floor(day_limit)
        if not fixes or min(fixes.values()) < 0 or node_id not in fixes:
            return False
        others = [f for n, f in fixes.items() if n != node_id]
        if not others:
            return True
        # the node's own pair, one other pair at least and at most qty - 1 of them
        mine = next(a for a, n in self.adjusts if n == node_id)
        rest = [a for a, n in self.adjusts if n != node_id]
        adjust = mine + rest[0] + sum(min(a, 0.0) for a in rest[1:self.line.qty - 1])
        bound = fixes[node_id] + min(others) + self.problem.split_penalty + self.kg * pmin + adjust
        return bound > value + EPS

    def alone(self, node_id: str):
        """(candidate, carrier options) when `node_id` can ship the whole line
        alone within the shipment limit, else None."""
        mine = self.by_node.get(node_id, ())
        if not self.ok or len(mine) != 1 or mine[0].line != self.line.index:
            return None
        if self.limit is not None and self.limit < 1:
            return None
        opts = self.problem.carriers.get(node_id)
        if not opts or self.problem.stock.get((node_id, self.line.sku), 0) < self.line.qty:
            return None
        return mine[0], [(o.fixed, o.per_kg, o.days, o.carrier) for o in opts]

    def forced(self, node_id: str, plan):
        found = self.alone(node_id)
        if found is None:
            return None
        cand, opts = found
        problem, kg = self.problem, self.kg
        if cand.avoided:
            if plan is None or plan.avoided != 0:
                return None
            return self._plan(node_id, cand, pick_carrier(opts, kg), 1, False)
        if problem.objective == "speed":
            fastest = min(o[2] for o in opts)
            if plan is None or fastest < plan.days:
                return None
            quick = [o for o in opts if o[2] <= fastest]
            choice = pick_carrier(quick, kg)
            if fastest > plan.days:         # slower: the days are the message
                return self._plan(node_id, cand, choice, 0, False)
            value = choice[0] + choice[1] * kg + cand.adjust
            if not self.valid or not self.no_split_beats(node_id, value, fastest):
                return None
            return self._plan(node_id, cand, choice, 0, True)
        if problem.objective != "cost" or not self.valid:
            return None
        choice = pick_carrier(opts, kg)
        value = choice[0] + choice[1] * kg + cand.adjust
        if not self.no_split_beats(node_id, value, None):
            return None
        return self._plan(node_id, cand, choice, 0, True)

    def _plan(self, node_id, cand, choice, avoided, exact):
        fixed, per_kg, days, carrier = choice
        kg = self.kg
        cost = fixed + per_kg * kg
        ship = _new(alloc.Shipment, (node_id, carrier, ((self.line.index, self.line.qty),), kg, cost, days))
        return _new(alloc.Plan, ((ship,), cost + cand.adjust, cost, days, avoided, exact))


def estimate(problem, plan, eligible: list[str], avoid_notes: dict[str, str], than: str,
             sku_of: dict[int, str], currency: str | None = None) -> dict[str, str]:
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
    # what the plan is without each line that one shipment carries whole:
    # (its shipment, shipments left, cost and days of the rest, adjusts of the rest)
    without = {}
    for index, ln in lines.items():
        if index in split_lines or index not in carried:
            continue
        source = carried[index]
        src_node, _, _, _, src_lines = base[source]
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
        adjust = sum(pairs[(i, n)].adjust for n_, (n, _, _, _, ls) in enumerate(base) for i in ls
                     if not (n_ == source and i == index))
        without[index] = (src_node, shipments, total, days, adjust, kg)
    out = {}
    for node_id in eligible:
        opts = [(o.fixed, o.per_kg, o.days, o.carrier) for o in problem.carriers.get(node_id, ())]
        best = None
        for index, (src_node, shipments, total, days, adjust, kg) in without.items():
            cand = pairs.get((index, node_id))
            if cand is None or not opts or problem.stock.get((node_id, lines[index].sku), 0) < lines[index].qty:
                continue
            f, p, d, _ = _pick(opts, kg, max_days)
            moved_days = max(days, d)
            avoided = plan.avoided - int(pairs[(index, src_node)].avoided) + int(cand.avoided)
            value = total + (f + p * kg) + problem.split_penalty * max(shipments - 1, 0) + adjust + cand.adjust
            if problem.objective == "balanced":
                value += problem.day_value * moved_days
            key = (avoided, moved_days if problem.objective == "speed" else 0, value, index)
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
        rounded = cents(delta)
        more = f"{money(delta, currency)} more" if rounded > 0 else \
            f"{money(-delta, currency)} less" if rounded < 0 else "the same to the cent"
        out[node_id] = f"not chosen: shipping {sku_of[index]} from it instead costs {more}"
    return out


def _pick(opts, kg, max_days):
    """The allocator's carrier choice; under "speed" only options as fast as
    the chosen plan when there are any."""
    if max_days is not None:
        fast = [o for o in opts if o[2] <= max_days]
        opts = fast or [o for o in opts if o[2] == min(x[2] for x in opts)]
    return pick_carrier(opts, kg)
