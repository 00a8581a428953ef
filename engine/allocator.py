"""Order allocation: which nodes ship which lines, with which carrier.

Pure functions over frozen dataclasses; no I/O.  ``solve`` returns the best
:class:`Plan` for a :class:`Problem` (or None when no plan is feasible) and
``explain_infeasible`` says in a few words why a problem has no plan.

Objective key, compared lexicographically::

    (avoided pairs used, max days if objective == "speed", value)

where value = sum of shipment costs + split_penalty * (shipments - 1)
+ sum of the adjusts of the (line, node) pairs used, plus day_value * max days
for "balanced".  Values within 1e-9 are equal.

Tie-break among plans with equal keys (input-order independent): fewer
shipments, then fewer pieces (a line split over two nodes is two pieces: no
split when an unsplit plan is as good), then the tuple of sorted node ids, then the tuple of carrier ids
(in node order), then the ((line index, qty), ...) tuple per shipment -- each
compared lexicographically -- among the plans the search enumerates: a line
whose sku no other line has splits with at most one chunk that is neither
1 unit nor all of that node's stock (some optimum always has this form).
Each shipment's carrier is the cheapest at its weight among those allowed
(all, or days <= D under a day limit D); ties go to fewer days, then the
smaller carrier id.

Algorithm (details in ``engine/_search.py``):

1. compile: node ids sorted; candidates without stock or carriers dropped;
   each line's candidates sorted by the cost of shipping it alone;
2. "speed"/"balanced" are solved as one cost problem per transit-day limit D
   (only options with days <= D), keyed (avoided, D, cost) or
   (avoided, cost + day_value * D); the best over all D is the optimum, and
   limits that cannot beat the incumbent are skipped;
3. each cost problem: seed with the best single-node plan, then depth-first
   branch and bound over lines (splits as increasing chains of node chunks)
   with an admissible bound (per-kg floors + forced adjusts + the fixed cost
   of one more shipment when the open ones cannot take the rest);
4. the searches share a work budget (WORK_LIMIT, 5x for orders of at most
   SMALL_ORDER lines); when it runs out the best plan found is polished
   (local search, exhaustive search over a few promising nodes), then
   improved by engine/_bigsearch.py's local search and its search over
   sets of open nodes (MID_WORK times the budget), and returned with
   exact=False; when none was found (a tight max shipments
   that the line-by-line greedy plan breaks), engine/_bigsearch.py's
   construction finds one whenever the nodes it picks can ship the order.
   A held order's reason claims only what the search proved ("needs 3
   shipments") or says the search was cut short.
   One-line "cost" orders whose best single node provably beats any split
   skip the search (fast path);
5. orders of more than _search.MAX_CHUNKS lines have no plan shallow enough
   for the exact search: they are planned by ``engine/_bigsearch.py``
   instead (per day limit, the best single-node plan or one built node by
   node, then a local search that opens, closes and swaps nodes and moves
   lines between them, with LONG_WORK times the budget; exact=False). It
   keeps node_units itself: solve() does not share them out per sku first
   (_within_capacity) for such orders, nor for orders of more than
   SMALL_ORDER lines whose search over the per-sku caps alone was cut
   short and breaks a node's units (_units_kept).
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from . import _bigsearch, _search
from ._search import INF
from .limits import expired

_new = tuple.__new__     # a named tuple without the Python-level __new__ (hot paths)

WORK_LIMIT = 400_000    # search work units per solve (~0.1-0.3 s of CPU)
SMALL_ORDER = 6         # orders with at most this many lines get 5x the budget
LONG_WORK = 2           # orders past _search.MAX_CHUNKS lines get 2x (~0.3-0.5 s)
MID_WORK = 1           # a cut-short search's plan: _bigsearch's local search gets 1x more
OBJECTIVES = ("cost", "speed", "balanced")


class Line(NamedTuple):
    """An order line."""
    index: int          # position in the order, 0-based, unique
    sku: str
    qty: int            # >= 1
    weight: float       # kg per unit


class CarrierOption(NamedTuple):
    """One way a given node can ship to this customer (the fields of
    engine.costs.Lane, in the same order: a Lane is accepted as one)."""
    carrier: str
    fixed: float        # base + distance + handling + surcharges, in money
    per_kg: float       # money per kg of the shipment's total weight
    days: int           # transit days for this node + carrier


class Candidate(NamedTuple):
    """Node ``node`` may ship (part of) line ``line``."""
    line: int                   # Line.index
    node: str
    avoided: bool = False       # soft exclusion: used only when unavoidable
    adjust: float = 0.0         # added once if the node ships any of the line


@dataclass(frozen=True)
class Problem:
    lines: tuple[Line, ...]
    carriers: Mapping[str, tuple[CarrierOption, ...]]  # node -> options
    candidates: tuple[Candidate, ...]        # only these (line, node) pairs
    stock: Mapping[tuple[str, str], int]     # (node, sku) -> usable units
    objective: str = "cost"                  # "cost" | "speed" | "balanced"
    day_value: float = 0.0                   # money per day ("balanced")
    split_penalty: float = 0.0               # per shipment beyond the first
    max_shipments: int | None = None
    ship_complete: bool = False              # exactly one shipment
    # node -> units it may still ship in all today (its capacity left), for
    # nodes where that can bind across lines of different skus; `stock` is
    # already capped at it per (node, sku)
    node_units: Mapping[str, int] | None = None


class Shipment(NamedTuple):
    node: str
    carrier: str
    lines: tuple[tuple[int, int], ...]   # (line index, qty), by line index
    weight: float
    cost: float         # fixed + per_kg * weight (no penalty, no adjust)
    days: int


class Plan(NamedTuple):
    shipments: tuple[Shipment, ...]     # sorted by node id
    value: float        # objective value (for "speed": the cost value)
    cost: float         # sum of shipment costs
    days: int           # max days over the shipments
    avoided: int        # avoided (line, node) pairs used
    exact: bool         # True when the search proved optimality


class _Model:
    """Validated, id-mapped view of a Problem shared by every day limit.

    Only candidates whose node has carrier options and stock are kept; node
    ids are numbered in sorted order; stock lives in one bin per (node, sku).
    """

    def __init__(self, problem: Problem):
        by_index = {}
        for ln in problem.lines:
            if ln.index in by_index:
                raise ValueError(f"duplicate line index {ln.index}")
            if ln.qty < 1 or ln.weight < 0:
                raise ValueError(f"line {ln.index}: qty must be >= 1, weight >= 0")
            by_index[ln.index] = ln
        self.by_index = by_index
        self.pairs = pairs = {}
        kept = []
        carriers, stock = problem.carriers, problem.stock
        for c in problem.candidates:
            line, node = c.line, c.node
            ln = by_index.get(line)
            if ln is None:
                raise ValueError(f"candidate for unknown line {line}")
            if (line, node) in pairs:
                raise ValueError(f"duplicate candidate ({line}, {node!r})")
            pairs[line, node] = c
            if carriers.get(node):
                have = stock.get((node, ln.sku), 0)
                if have > 0:
                    kept.append((node, ln.sku, have, line, int(c.avoided), c.adjust))
        self.node_ids = sorted({k[0] for k in kept})
        self.node_index = index = {n: i for i, n in enumerate(self.node_ids)}
        # per node: options as tuples, their (fixed, per_kg), the cheapest
        # fixed and per_kg, the slowest and fastest days
        self.opts, self.cost_pairs, self.fmin, self.pmin = [], [], [], []
        self.slowest, fastest = [], []
        for n in self.node_ids:
            opts, pairs_n = [], []
            fmin = pmin = INF
            slow, fast = -1, None
            for o in carriers[n]:
                fixed, per_kg, days = o.fixed, o.per_kg, o.days
                opts.append((fixed, per_kg, days, o.carrier))
                pairs_n.append((fixed, per_kg))
                if fixed < fmin:
                    fmin = fixed
                if per_kg < pmin:
                    pmin = per_kg
                if days > slow:
                    slow = days
                if fast is None or days < fast:
                    fast = days
            self.opts.append(tuple(opts))
            self.cost_pairs.append(tuple(pairs_n))
            self.fmin.append(fmin)
            self.pmin.append(pmin)
            self.slowest.append(slow)
            fastest.append(fast)
        self.rows, self.stock, bins = {}, [], {}
        for node, sku, have, line, avoided, adjust in kept:
            b = bins.get((node, sku))
            if b is None:
                b = bins[node, sku] = len(self.stock)
                self.stock.append(have)
            row = (index[node], avoided, adjust, b)
            if line in self.rows:
                self.rows[line].append(row)
            else:
                self.rows[line] = [row]
        self.lines = sorted((ln.index, ln.sku, ln.qty, ln.weight) for ln in problem.lines)
        limit = len(self.node_ids)
        if problem.max_shipments is not None:
            limit = min(limit, problem.max_shipments)
        if problem.ship_complete:
            limit = min(limit, 1)
        self.maxship, self.pen = limit, problem.split_penalty
        # bounds over every day limit: avoided pairs, fastest possible max days
        rows = [self.rows.get(i, ()) for i, _, _, _ in self.lines]
        self.av_floor = sum(all(r[1] for r in rs) for rs in rows)
        self.days = []
        if problem.objective != "cost":
            min_days = max((min((fastest[r[0]] for r in rs), default=0) for rs in rows),
                           default=0)
            self.days = sorted({o[2] for opts in self.opts for o in opts
                                if o[2] >= min_days})


def _day_limits(problem, model):
    """(D, primary, offset) per search; D=None means every carrier."""
    if problem.objective == "speed":
        return [(d, d, 0.0) for d in model.days]
    if problem.objective == "balanced" and problem.day_value > 0 and model.days:
        top = model.days[-1]
        rest = [(d, 0, problem.day_value * d) for d in model.days[:-1]]
        return [(top, 0, problem.day_value * top)] + rest
    return [(None, 0, 0.0)]


def solve(problem: Problem, require_node: str | None = None) -> Plan | None:
    """Best plan for ``problem`` (see module doc), or None if none exists.

    With ``require_node`` only plans in which that node ships something count.
    """
    if problem.node_units and len(problem.lines) <= _search.MAX_CHUNKS:
        return _within_capacity(problem, require_node, [MAX_SPLITS if require_node is None else MAX_SPLITS_FORCED])
    return _solve(problem, require_node)


# searches over ways of sharing nodes' capacity, per solve, before likely shares are tried
# instead: each is a full search, and the router also solves once per node it explains
MAX_SPLITS = 64
MAX_SPLITS_FORCED = 64


def _within_capacity(problem: Problem, require_node: str | None, budget: list[int]) -> Plan | None:
    """solve() when a node's capacity left can bind across lines of
    different skus: the best plan with the per-(node, sku) caps alone; when
    it ships more than a node's capacity left, the best over every way of
    sharing that capacity among the node's skus (each way caps the skus,
    and the node no longer couples them), node by node. The searches over
    ways share one budget (MAX_SPLITS per solve, MAX_SPLITS_FORCED for the
    explanations' forced solves: the ways of several nodes multiply); past it, or past the order's time limit, a few likely shares
    are tried instead (_likely_shares) and the plan is not proven optimal.
    When the search with the caps alone was itself cut short (an order of
    more than SMALL_ORDER lines), the searches over ways would be too: the
    units are kept by _bigsearch's local search instead (_units_kept)."""
    plain = _without_units(problem)
    plan = _solve(plain, require_node)
    if plan is None:
        return None
    units: dict[str, int] = {}
    for shipment in plan.shipments:
        units[shipment.node] = units.get(shipment.node, 0) + sum(q for _, q in shipment.lines)
    node = next((n for n in sorted(problem.node_units) if units.get(n, 0) > problem.node_units[n]), None)
    if node is None:
        return plan
    if not plan.exact and len(problem.lines) > SMALL_ORDER:
        # the search over the caps alone was cut short: so would be those over the
        # ways of sharing capacity; keep the capacity in the local search instead
        found = _units_kept(problem, plain, require_node, plan)
        if found is not None:
            return found
    left = problem.node_units[node]
    skus = sorted({ln.sku for ln in problem.lines if problem.stock.get((node, ln.sku), 0) > 0})
    caps = [problem.stock[node, sku] for sku in skus]
    rest = {n: u for n, u in problem.node_units.items() if n != node} or None
    splits = _splits(left, caps, budget[0]) if budget[0] > 0 and not expired() else None
    exact = splits is not None
    if splits is None:
        splits = _likely_shares(problem, plan, node, skus, left)
    budget[0] -= len(splits)
    best = None
    for split in splits:
        stock = dict(problem.stock)
        stock.update({(node, sku): cap for sku, cap in zip(skus, split)})
        sub = replace(problem, stock=stock, node_units=rest)
        found = _within_capacity(sub, require_node, budget) if rest else _solve(sub, require_node)
        if found is not None and (best is None or _better(problem, found, best)):
            best = found
    if best is not None and not exact:
        best = best._replace(exact=False)
    return best


def _units_kept(problem: Problem, plain: Problem, require_node: str | None, plan: Plan) -> Plan | None:
    """A plan within every node's units left, by engine/_bigsearch.py's local
    search keeping them: from `plan` (the best found over the per-sku caps
    alone) with what its nodes ship past their units moved to its other
    nodes, and from the long orders' construction (then improved alike
    if it is the better one); the best plan found (exact=False)."""
    model, instances = _shared(plain)
    req = None if require_node is None else model.node_index[require_node]
    floor = model.av_floor if req is None else model.av_floor + _avoided_with(model, req)
    units = [problem.node_units.get(n, INF) for n in model.node_ids]
    limits = _day_limits(problem, model)
    D, prim, off = next((lim for lim in limits if lim[0] is None or lim[0] == plan.days), limits[0])
    inc = _search.Incumbent()
    inst = _instance(model, instances, req, D)
    alloc = [(index, model.node_index[s.node], qty) for s in plan.shipments for index, qty in s.lines]
    _bigsearch.improve_from(inc, inst, prim, off, units, MID_WORK * WORK_LIMIT, alloc)
    if not expired():
        first = inc.alloc
        _bigsearch.search(inc, limits, lambda D: _instance(model, instances, req, D), units, floor,
                          MID_WORK * WORK_LIMIT)
        if inc.alloc is not first and not expired():     # the construction's plan won: improve it too
            prim, off = next((p, o) for D, p, o in limits if D == inc.inst.D)
            _bigsearch.improve_from(inc, inc.inst, prim, off, units, MID_WORK * WORK_LIMIT)
    if inc.alloc is None:
        return None
    return _build_plan(problem, model, inc.inst, inc.alloc, False)


def _likely_shares(problem: Problem, plan: Plan, node: str, skus: list[str], left: int) -> list[tuple[int, ...]]:
    """Shares of `node`'s capacity left worth a search when every way is too
    many: first what the node must ship of each sku because the other
    candidates lack it, the rest in proportion to what the plan without the
    capacity took there; then none at all (the others ship everything)."""
    used = {sku: 0 for sku in skus}
    sku_of = {ln.index: ln.sku for ln in problem.lines}
    for shipment in plan.shipments:
        if shipment.node == node:
            for index, qty in shipment.lines:
                used[sku_of[index]] += qty
    need = []
    for sku in skus:
        wanted = sum(ln.qty for ln in problem.lines if ln.sku == sku)
        elsewhere = sum(problem.stock.get((n, sku), 0) for n in
                        {c.node for c in problem.candidates if c.node != node and sku_of.get(c.line) == sku
                         and problem.carriers.get(c.node)})
        need.append(min(problem.stock[node, sku], max(0, wanted - elsewhere)))
    shares = []
    if sum(need) <= left:
        more = [max(0, used[sku] - n) for sku, n in zip(skus, need)]
        extra = _scaled(more, left - sum(need)) if sum(more) > left - sum(need) else tuple(more)
        shares.append(tuple(min(problem.stock[node, sku], n + e) for sku, n, e in zip(skus, need, extra)))
    none = tuple(0 for _ in skus)
    if none not in shares:
        shares.append(none)
    return shares


def _without_units(problem: Problem) -> Problem:
    """The problem without its node_units, the same object each time for the
    same problem (the router solves it once per node it explains, and the
    searches' shared model is kept per problem object)."""
    last = getattr(_SHARED, "plain", None)
    if last is None or last[0] is not problem:
        last = _SHARED.plain = (problem, replace(problem, node_units=None))
    return last[1]


def _splits(total: int, caps: list[int], limit: int) -> list[tuple[int, ...]] | None:
    """Every way of sharing `total` units among bins of these caps, using
    all of it (a plan that fits a smaller share fits a larger one), or None
    when there are more than `limit`."""
    out: list[tuple[int, ...]] = []

    def share(i: int, left: int, chosen: tuple[int, ...]) -> bool:
        if i == len(caps) - 1:
            if left <= caps[i]:
                out.append(chosen + (left,))
            return len(out) <= limit
        room = sum(caps[i + 1:])
        for amount in range(min(caps[i], left), max(0, left - room) - 1, -1):
            if not share(i + 1, left - amount, chosen + (amount,)):
                return False
        return True

    return out if share(0, min(total, sum(caps)), ()) else None


def _scaled(used: list[int], total: int) -> tuple[int, ...]:
    """`used` scaled down to sum to `total` (largest remainders first)."""
    whole = sum(used)
    shares = [u * total // whole for u in used]
    order = sorted(range(len(used)), key=lambda i: (-(used[i] * total % whole), i))
    for i in order[:total - sum(shares)]:
        shares[i] += 1
    return tuple(shares)


def _better(problem: Problem, a: Plan, b: Plan) -> bool:
    """True when plan `a` beats plan `b` by the module doc's key and tie-break."""
    speed = problem.objective == "speed"
    first_a, first_b = (a.avoided, a.days if speed else 0), (b.avoided, b.days if speed else 0)
    if first_a != first_b:
        return first_a < first_b
    if abs(a.value - b.value) > _search.EPS:
        return a.value < b.value

    def tie(plan: Plan) -> tuple:
        return (len(plan.shipments), sum(len(s.lines) for s in plan.shipments),
                tuple(s.node for s in plan.shipments), tuple(s.carrier for s in plan.shipments),
                tuple(s.lines for s in plan.shipments))
    return tie(a) < tie(b)


def _solve(problem: Problem, require_node: str | None = None) -> Plan | None:
    if problem.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {problem.objective!r}")
    if problem.day_value < 0:
        raise ValueError("day_value must be >= 0")
    if len(problem.lines) == 1 and problem.objective == "cost" and require_node is None:
        plan = _one_line(problem)
        if plan is not None:
            return plan
    model, instances = _shared(problem)
    if not model.lines:
        return None if require_node is not None else Plan((), 0.0, 0.0, 0, 0, True)
    if require_node is not None and require_node not in model.node_index:
        return None
    req = None if require_node is None else model.node_index[require_node]
    floor = model.av_floor if req is None else model.av_floor + _avoided_with(model, req)
    if len(model.lines) > _search.MAX_CHUNKS:     # no plan is shallow enough for the exact search
        return _solve_long(problem, model, instances, req, floor)
    work = WORK_LIMIT * (5 if len(model.lines) <= SMALL_ORDER else 1)
    inc, budget, exact, built = _search.Incumbent(), [work], True, []
    limits = _day_limits(problem, model)
    cost_floor = None           # balanced: cheapest plan over every carrier
    try:
        for D, prim, off in limits:
            if inc.alloc is not None and inc.key[0] == floor:
                if problem.objective == "speed":
                    break                       # later limits are slower
                if cost_floor is not None and cost_floor + off > inc.key[2] + _search.EPS:
                    break                       # off grows with D: so do later ones
            built.append((_instance(model, instances, req, D), prim, off))
            inst = built[-1][0]
            if inst.feasible:
                _search.seed_single_node(inst, inc, prim, off)
                exact &= _search.branch_and_bound(inst, inc, prim, off, budget)
            if cost_floor is None and inc.alloc is not None:
                cost_floor = inc.key[2] - off
    except _search.OutOfBudget:
        exact = False
    if not exact:
        if inc.alloc is None:
            for D, prim, off in limits[len(built):]:
                built.append((_instance(model, instances, req, D), prim, off))
            for inst, prim, off in built:
                if inst.feasible:
                    _search.greedy(inst, inc, prim, off)
        if inc.alloc is None and not expired():
            # still none (the greedy plan breaks a tight max shipments): the long
            # orders' construction finds one whenever the nodes it picks can ship it
            _bigsearch.search(inc, limits, lambda D: _instance(model, instances, req, D),
                              [INF] * len(model.node_ids), floor, work // 2)
        if inc.alloc is not None:
            inst, prim, off = next((b for b in built if b[0] is inc.inst), (inc.inst, None, None))
            if prim is None:    # the instance _bigsearch planned with: its day limit's key
                prim, off = next((p, o) for D, p, o in limits if D == inst.D)
            _search.polish(model, inc, inst, prim, off, work // 2)
            if not expired():
                _bigsearch.improve_from(inc, inst, prim, off, [INF] * len(model.node_ids), MID_WORK * WORK_LIMIT)
    if inc.alloc is None:
        _PROOF.none_proven = exact
        return None
    return _build_plan(problem, model, inc.inst, inc.alloc, exact)


def _solve_long(problem, model, instances, req, floor):
    """_solve for an order of more lines than the exact search can reach:
    engine/_bigsearch.py, a construction and a local search per day limit
    with LONG_WORK units in all; a node's units left today are kept there
    (not shared out per sku by _within_capacity)."""
    left = problem.node_units or {}
    units = [left.get(n, INF) for n in model.node_ids]
    inc = _search.Incumbent()
    _bigsearch.search(inc, _day_limits(problem, model),
                      lambda D: _instance(model, instances, req, D), units, floor, LONG_WORK * WORK_LIMIT)
    if inc.alloc is None:
        return None
    return _build_plan(problem, model, inc.inst, inc.alloc, False)


_SHARED = threading.local()
_PROOF = threading.local()      # none_proven: the last _solve that found no plan searched them all


def _shared(problem: Problem) -> tuple[_Model, dict]:
    """The model of `problem` and its search instances per day limit, kept
    for the last problem solved in this thread: the router solves one
    problem, then the same problem once per node it explains
    (require_node), and those searches share everything but the node."""
    last = getattr(_SHARED, "last", None)
    if last is None or last[0] is not problem:
        last = _SHARED.last = (problem, _Model(problem), {})
    return last[1], last[2]


def _instance(model: _Model, instances: dict, req: int | None, D):
    """_search.Instance(model, req, D), built once per day limit: an
    instance depends on the required node only through `req` and whether
    any line can use that node."""
    base = instances.get(D)
    if base is None:
        base = instances[D] = _search.Instance(model, None, D)
    if req is None:
        return base
    inst = copy.copy(base)
    inst.req = req
    inst.feasible = base.feasible and any(req in ld.pos_of for ld in base.lines)
    return inst


def _avoided_with(model: _Model, req: int) -> int:
    """Avoided pairs that any plan shipping from node `req` uses beyond the
    model's floor: one when every pair of `req` is avoided and none of its
    lines is already one whose every candidate is avoided, else none."""
    lines = []
    for line, rows in model.rows.items():
        for node, avoided, _, _ in rows:
            if node == req:
                if not avoided:
                    return 0
                lines.append(rows)
    return 0 if any(all(r[1] for r in rows) for rows in lines) else 1


def _one_line(problem: Problem) -> Plan | None:
    """Fast path for one-line orders under "cost": the best single node.

    Returns None (use the full search) unless that node avoids nothing and
    no split over two or more nodes can possibly be as cheap.
    """
    ln = problem.lines[0]
    if ln.qty < 1 or ln.weight < 0:
        return None                             # the full path raises
    kg, sku, qty = ln.qty * ln.weight, ln.sku, ln.qty
    carriers, stock = problem.carriers, problem.stock
    best, best_opts, seen = None, None, set()
    fixes, pmin, prefs = [], _search.INF, []
    for c in problem.candidates:
        if c.line != ln.index or c.node in seen:
            return None                         # the full path raises
        seen.add(c.node)
        opts = carriers.get(c.node)
        have = stock.get((c.node, sku), 0) if opts else 0
        if have <= 0:
            continue
        fixed, cost = _search.INF, _search.INF
        for o in opts:
            fixed = min(fixed, o.fixed)
            pmin = min(pmin, o.per_kg)
            cost = min(cost, o.fixed + o.per_kg * kg)
        fixes.append(fixed)
        if c.adjust < 0:
            prefs.append(c.adjust)
        if have < qty:
            continue
        key = (int(c.avoided), cost + c.adjust, c.node)
        if best is None or key[0] < best[0] or (key[0] == best[0] and (
                key[1] < best[1] - _search.EPS
                or (key[1] <= best[1] + _search.EPS and key[2] < best[2]))):
            best, best_opts, adjust = key, opts, c.adjust
    limit = 1 if problem.ship_complete else problem.max_shipments
    if best is None or best[0] or (limit is not None and limit < 1) or min(fixes) < 0:
        return None
    if limit is None or limit >= 2:
        two = sorted(fixes)[:2]
        split = (sum(two) + problem.split_penalty + kg * pmin
                 + sum(sorted(prefs)[:qty]))
        if len(two) == 2 and split <= best[1] + _search.EPS:
            return None
    fixed, per_kg, days, carrier = _search.pick_carrier(
        [(o.fixed, o.per_kg, o.days, o.carrier) for o in best_opts], kg)
    cost = fixed + per_kg * kg
    ship = _new(Shipment, (best[2], carrier, ((ln.index, qty),), kg, cost, days))
    return _new(Plan, ((ship,), cost + adjust, cost, days, 0, True))


def _build_plan(problem, model, inst, alloc, exact):
    by_node = {}
    for index, n, a in alloc:
        by_node.setdefault(model.node_ids[n], []).append((index, a))
    weight = {i: ln.weight for i, ln in model.by_index.items()}
    shipments, adjust, avoided = [], 0.0, 0
    for node in sorted(by_node):
        part = tuple(sorted(by_node[node]))
        kg = sum(weight[i] * a for i, a in part)
        fixed, per_kg, days, carrier = _search.pick_carrier(
            inst.full[model.node_index[node]], kg)
        shipments.append(_new(Shipment, (node, carrier, part, kg, fixed + per_kg * kg, days)))
        for i, _ in part:
            adjust += model.pairs[i, node].adjust
            avoided += model.pairs[i, node].avoided
    cost = sum(s.cost for s in shipments)
    days = max((s.days for s in shipments), default=0)
    value = cost + problem.split_penalty * max(len(shipments) - 1, 0) + adjust
    if problem.objective == "balanced":
        value += problem.day_value * days
    return _new(Plan, (tuple(shipments), value, cost, days, avoided, exact))


def explain_infeasible(problem: Problem) -> str:
    """A short human reason why ``solve(problem)`` finds no plan."""
    model = _Model(problem)
    wanted, supply = {}, {}
    for ln in sorted(problem.lines, key=lambda ln: ln.index):
        nodes = {c.node for (i, _), c in model.pairs.items()
                 if i == ln.index and problem.carriers.get(c.node)}
        if not nodes:
            return f"no node can ship {ln.sku} (order line {ln.index + 1})"
        have = sum(max(problem.stock.get((n, ln.sku), 0), 0) for n in nodes)
        if have < ln.qty:
            return f"not enough stock of {ln.sku}: {ln.qty} wanted, {have} available"
        wanted[ln.sku] = wanted.get(ln.sku, 0) + ln.qty
        supply.setdefault(ln.sku, set()).update(nodes)
    for sku, qty in sorted(wanted.items()):
        have = sum(max(problem.stock.get((n, sku), 0), 0) for n in supply[sku])
        if have < qty:
            return f"not enough stock of {sku}: {qty} wanted, {have} available"
    loose = replace(problem, objective="cost", max_shipments=None, ship_complete=False)
    if solve(loose) is None:
        return "no combination of nodes has the stock for every line"
    _PROOF.none_proven = False
    if solve(problem) is not None:
        return "a plan exists"
    # proven only by a search that saw every plan (capacity shared out per sku: several searches)
    proven = _PROOF.none_proven and not problem.node_units
    if problem.ship_complete:
        # certain when no node could ship it alone: its items and, under node_units, all the units
        shared, instances = _shared(problem)
        total, units = sum(ln.qty for ln in problem.lines), problem.node_units or {}
        proven = proven or not any(total <= units.get(shared.node_ids[n], total)
                                   for n, _, _ in _search.single_nodes(_instance(shared, instances, None, None)))
        return "no single node has every item (ship complete)" if proven else \
            "no single node with every item was found within the work limit (ship complete)"
    allowed = problem.max_shipments
    need = None
    for k in range(max(allowed, 0) + 1, len(model.node_ids) + 1):
        if expired():           # the order's time limit: say no number rather than overrun it
            proven = False
            break
        if solve(replace(loose, max_shipments=k)) is not None:
            need = k
            break
    if proven:
        return f"needs {need or 'more'} shipments, at most {allowed} allowed"
    return (f"no plan of at most {allowed} shipments was found within the work limit"
            + (f" (one of {need} exists)" if need else ""))
