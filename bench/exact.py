"""An exact reference for engine.allocator: the allocation Problem as a
mixed-integer program, solved by HiGHS (`pip install highspy`; a bench-only
dependency, not one of Steve's).

    value = sum over used (node, carrier) of fixed + per_kg * kg
          + split penalty * (shipments - 1) + sum of adjusts of the used pairs
          (+ day value * max days, for "balanced")

compared as the allocator does: fewer avoided (line, node) pairs first, then
(for "speed") fewer days for the slowest shipment, then value. Days are
handled as the allocator does, one program per transit-day limit D (only
carriers with days <= D): "speed" takes the smallest D with the fewest
avoided pairs, "balanced" the best value + day value * D.

Variables per (line, node) candidate: units x (integer), used u (binary);
per node and carrier: chosen z (binary) and its kg k (continuous). The
avoided pairs get a weight larger than any value, so one program minimises
(avoided, value) lexicographically.
"""

from __future__ import annotations

import math

import highspy

BIG = 1e6           # per avoided pair: more than any order's value
CENT = 0.01


def _program(problem, day_limit):
    """The best (avoided, value) plan with carriers of days <= day_limit:
    (avoided, value, shipments, max days) or None when infeasible."""
    h = highspy.Highs()
    h.silent()
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    lines = {ln.index: ln for ln in problem.lines}
    nodes = sorted({c.node for c in problem.candidates})
    opts = {n: [o for o in problem.carriers.get(n, ()) if day_limit is None or o.days <= day_limit]
            for n in nodes}
    x, u, objective = {}, {}, 0
    avoided_terms = []
    for c in problem.candidates:
        ln = lines[c.line]
        have = problem.stock.get((c.node, ln.sku), 0)
        if have <= 0 or not opts[c.node]:
            continue
        x[c.line, c.node] = h.addIntegral(lb=0, ub=min(ln.qty, have))
        u[c.line, c.node] = h.addBinary()
        h.addConstr(x[c.line, c.node] <= ln.qty * u[c.line, c.node])
        h.addConstr(u[c.line, c.node] <= x[c.line, c.node])
        objective = objective + c.adjust * u[c.line, c.node]
        if c.avoided:
            avoided_terms.append(u[c.line, c.node])
    for index, ln in lines.items():
        pairs = [x[key] for key in x if key[0] == index]
        if not pairs:
            return None
        h.addConstr(sum(pairs) == ln.qty)
    used = {}
    for n in nodes:
        mine = [(key, var) for key, var in x.items() if key[1] == n]
        if not mine:
            continue
        kg_node = sum(lines[key[0]].weight * var for key, var in mine)
        cap = sum(lines[key[0]].weight * lines[key[0]].qty for key, _ in mine)
        y = used[n] = h.addBinary()
        for key, _ in mine:
            h.addConstr(u[key] <= y)
        zs, ks = [], []
        for o in opts[n]:
            z = h.addBinary()
            k = h.addVariable(lb=0, ub=cap)
            h.addConstr(k <= cap * z)
            zs.append(z)
            ks.append(k)
            objective = objective + o.fixed * z + o.per_kg * k
        h.addConstr(sum(zs) == y)
        h.addConstr(sum(ks) == kg_node)
        # stock is per (node, sku): lines of the same sku share it
        by_sku = {}
        for key, var in mine:
            by_sku.setdefault(lines[key[0]].sku, []).append(var)
        for sku, vars_ in by_sku.items():
            if len(vars_) > 1:
                h.addConstr(sum(vars_) <= problem.stock.get((n, sku), 0))
        # the node's capacity left today, over every sku it ships
        left = (problem.node_units or {}).get(n)
        if left is not None and len(mine) > 1:
            h.addConstr(sum(var for _, var in mine) <= left)
    shipments = sum(used.values())
    limit = 1 if problem.ship_complete else problem.max_shipments
    if limit is not None:
        h.addConstr(shipments <= limit)
    objective = objective + problem.split_penalty * shipments - problem.split_penalty
    if avoided_terms:
        objective = objective + BIG * sum(avoided_terms)
    h.minimize(objective)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    total = h.getObjectiveValue()
    avoided = round(sum(h.val(v) for v in avoided_terms)) if avoided_terms else 0
    value = total - BIG * avoided
    count = round(sum(h.val(v) for v in used.values()))
    return avoided, value, count


def solve(problem):
    """(avoided, value, shipments, days key) of an optimal plan, or None.
    `value` includes the day value for "balanced" (as Plan.value does)."""
    if problem.objective == "cost":
        best = _program(problem, None)
        return None if best is None else (best[0], best[1], best[2], 0)
    limits = sorted({o.days for opts in problem.carriers.values() for o in opts})
    best = None
    for day in limits:
        found = _program(problem, day)
        if found is None:
            continue
        avoided, value, count = found
        if problem.objective == "speed":
            key = (avoided, day, value)
        else:
            value += problem.day_value * day
            key = (avoided, 0, value)
        if best is None or key[:2] < best[0][:2] or (key[:2] == best[0][:2] and key[2] < best[0][2] - 1e-9):
            best = (key, count)
    if best is None:
        return None
    (avoided, day, value), count = best
    return avoided, value, count, day


def plan_key(problem, plan):
    """The allocator plan's (avoided, value, shipments, days key)."""
    return (plan.avoided, plan.value, len(plan.shipments),
            plan.days if problem.objective == "speed" else 0)


def gap(problem, plan, optimum) -> float:
    """Relative gap of the plan's value over the optimum's (0 when optimal);
    math.inf when the plan loses on avoided pairs or days."""
    mine = plan_key(problem, plan)
    if mine[0] > optimum[0] or mine[3] > optimum[3]:
        return math.inf
    if mine[0] < optimum[0] or mine[3] < optimum[3]:
        return 0.0          # cannot beat an optimum: numerical noise of the program
    difference = mine[1] - optimum[1]
    if difference <= CENT / 2:        # equal to the cent: the program's tolerances
        return 0.0
    return difference / max(abs(optimum[1]), 1e-9)


class Tally:
    """The allocator's plans against the optimum, order by order (one line
    each, as `bench/long_orders.py` and `bench/mid_orders.py` print them),
    and the summary of all."""

    def __init__(self):
        self.gaps: list[float] = []
        self.times: list[float] = []

    def add(self, head: str, problem, plan, optimum, took: float) -> None:
        if plan is None or optimum is None:
            print(f"{head}  allocator {'no plan' if plan is None else 'a plan'}, "
                  f"optimum {'none' if optimum is None else 'exists'}", flush=True)
            if optimum is not None:
                self.gaps.append(math.inf)
            return
        self.times.append(took)
        found = gap(problem, plan, optimum)
        self.gaps.append(found)
        print(f"{head}  {took:4.2f} s  {plan.value:9.2f} ({plan.avoided} avoided, {len(plan.shipments)} shipments"
              f"{', exact' if plan.exact else ''})  optimum {optimum[1]:9.2f} ({optimum[0]}, {optimum[2]})  "
              f"gap {100 * found:6.2f}%", flush=True)

    def summary(self) -> str:
        found = [g for g in self.gaps if g != math.inf]
        times = self.times
        return (f"{len(self.gaps)} orders with a plan: {len(self.gaps) - len(found)} without one or with more "
                f"avoided pairs, {sum(g == 0 for g in found)} optimal; mean gap "
                f"{100 * sum(found) / max(len(found), 1):.2f}%, worst {100 * max(found, default=0):.2f}%; "
                f"time mean {sum(times) / max(len(times), 1):.2f} s, slowest {max(times, default=0):.2f} s")
