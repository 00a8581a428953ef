"""Search core behind :mod:`engine.allocator` (internal, standard library only).

Everything here works on small integer ids prepared by ``allocator.py``:
nodes are ``0..N-1`` in sorted-id order and stock lives in *bins*, one per
(node, sku) pair touched by some candidate.  One :class:`Instance` is built
per transit-day limit ``D`` (only carrier options with ``days <= D``).

The exact search is a depth-first branch and bound over the order lines
(heaviest first).  A line is served by a chain of *chunks*
(node, qty) whose nodes are strictly increasing in the line's candidate
order, so every split is generated once; most lines take one chunk.  A
shipment costs ``min_c(fixed_c + per_kg_c * kg)``: concave in kg, with
slopes >= the node's smallest per_kg, so the lower bound of a state is

    cost so far + the adjusts no plan can avoid (the r best preferences of a
    line of r units, else its smallest adjust) + min(
        the open nodes ship the rest: each kg at >= their best per-kg rate,
        new shipments open: penalty + the largest "cheapest fixed cost" of a
            line that no open node can take (else the smallest one) + each
            kg at >= the best per-kg rate of its line's candidates)

and avoided pairs are bounded alike (a line whose candidates are all
avoided costs at least one).  Subtrees are pruned only when strictly worse
than the incumbent, so ties reach the tie-break.

When the work budget runs out, :func:`polish` improves the best plan found:
local search (chunk relocations priced incrementally, closing a shipment,
opening one), an exhaustive search over a small pool of promising nodes,
and local search again.

The search is recursive, one level per chunk, and goes no deeper than
MAX_CHUNKS chunks: an order of more lines than that has no plan it can
reach, so ``allocator.py`` plans such orders with ``engine/_bigsearch.py``
instead and never calls this search for them.
"""
from __future__ import annotations

import math
from itertools import accumulate
from operator import add, and_

from time import monotonic

from .limits import current as deadline, expired

EPS = 1e-9
INF = math.inf
MAX_CHUNKS = 150        # deeper plans are left to polish (recursion depth); longer orders to _bigsearch
_NO_PLAN = 1 << 60      # "avoided" of the empty incumbent: everything beats it


class OutOfBudget(Exception):
    """Raised inside the search when the work budget is spent."""


def cost_at(pairs, kg):
    """min(fixed + per_kg * kg) over (fixed, per_kg) ``pairs``."""
    best = INF
    for fixed, per_kg in pairs:
        v = fixed + per_kg * kg
        if v < best:
            best = v
    return best


def pick_carrier(opts, kg):
    """Cheapest option at ``kg``; ties (within EPS): fewer days, then carrier id."""
    if len(opts) == 1:
        return opts[0]
    cheapest = INF
    for o in opts:
        v = o[0] + o[1] * kg
        if v < cheapest:
            cheapest = v
    best = None
    for o in opts:
        if o[0] + o[1] * kg <= cheapest + EPS and (best is None or (o[2], o[3]) < (best[2], best[3])):
            best = o
    return best


class LineData:
    """One order line compiled for the search (positions index ``cands``)."""

    def __init__(self, index, qty, weight, rows, inst, exclusive):
        self.index, self.q, self.w, self.exclusive = index, qty, weight, exclusive
        rows.sort()                      # (avoided, marginal, node, ...)
        # cands[p] = (node, bin, adjust, avoided, marginal cost of whole line)
        self.cands = cands = [(n, b, adj, av, marg) for av, marg, n, b, adj in rows]
        self.pos_of = {c[0]: p for p, c in enumerate(cands)}
        nodes = [c[0] for c in cands]

        def suffix(values, fold):        # suffix[p] = fold of values[p:]
            return list(accumulate(reversed(values), fold))[::-1]

        fmin, pmin, stock = inst.fmin, inst.pmin, inst.stock
        self.pmin_suf = suffix([pmin[n] for n in nodes], min)
        self.minfix_suf = suffix([fmin[n] for n in nodes], min)
        self.adjlb_suf = suffix([c[2] for c in cands], min)      # smallest adjust
        self.av_suf = suffix([c[3] for c in cands], and_)        # all avoided?
        self.cap_suf = suffix([stock[c[1]] for c in cands], add) + [0]
        # r units use at most r (line, node) pairs: the r best preferences
        self.negpre = [0.0, *accumulate(sorted(c[2] for c in cands if c[2] < 0))]
        self.nneg = len(self.negpre) - 1
        self.adj_min = self.adj_lb(qty, 0) if cands else 0.0     # whole line
        self.av_min = self.av_suf[0] if cands else 0
        self.lb = qty * weight * self.pmin_suf[0] + self.adj_min if cands else 0.0
        self._fix_order = None

    def adj_lb(self, r, lo):
        """Lower bound on the adjusts paid for ``r`` units at positions >= lo."""
        if self.nneg:
            return self.negpre[min(r, self.nneg)]
        return self.adjlb_suf[lo]

    def fix_order(self, fmin):
        """Positions by (avoided, cheapest fixed cost + adjust): new-node order."""
        if self._fix_order is None:
            c = self.cands
            self._fix_order = sorted(range(len(c)), key=lambda p: (
                c[p][3], fmin[c[p][0]] + c[p][2], p))
        return self._fix_order


class Instance:
    """The problem restricted to carrier options with ``days <= D``.

    ``model`` supplies node_ids, opts (per node: (fixed, per_kg, days,
    carrier) tuples), lines ((index, sku, qty, weight)), rows (line index ->
    [(node, avoided, adjust, bin)]), stock (per bin), pen and maxship.
    ``keep``: only these nodes may ship (a restricted search).
    """

    def __init__(self, model, req, D, keep=None):
        self.node_ids, self.D = model.node_ids, D
        self.pen, self.maxship, self.stock = model.pen, model.maxship, model.stock
        self.full, self.pairs = list(model.opts), list(model.cost_pairs)
        self.fmin, self.pmin = list(model.fmin), list(model.pmin)
        for n, slowest in enumerate(model.slowest):
            if D is not None and slowest > D:       # drop the too-slow options
                opts = self.full[n] = tuple([o for o in model.opts[n] if o[2] <= D])
                self.pairs[n] = tuple([o[:2] for o in opts])
                self.fmin[n] = min([o[0] for o in opts], default=INF)
                self.pmin[n] = min([o[1] for o in opts], default=INF)
        pairs = self.pairs
        self.lines, self.feasible = [], True
        skus = [sku for _, sku, _, _ in model.lines]
        for index, sku, qty, weight in model.lines:
            kg, rows = weight * qty, []
            for n, av, adj, b in model.rows.get(index, ()):
                if pairs[n] and (keep is None or n in keep):
                    marg = INF
                    for fx, pk in pairs[n]:
                        if fx + pk * kg < marg:
                            marg = fx + pk * kg
                    rows.append((av, marg + adj, n, b, adj))
            ld = LineData(index, qty, weight, rows, self, skus.count(sku) == 1)
            self.feasible &= ld.cap_suf[0] >= qty
            self.lines.append(ld)
        # lines with a handful of candidates first, then the heaviest: they
        # decide most of the cost, so good plans and tight bounds come early
        self.lines.sort(key=lambda ld: (len(ld.cands) > 3, -ld.q * ld.w, ld.index))
        # bounds for all the lines from i on (lb_rest also counts the adjusts)
        back = self.lines[::-1]
        self.lb_rest = [*accumulate([ld.lb for ld in back], initial=0.0)][::-1]
        self.adj_rest = [*accumulate([ld.adj_min for ld in back], initial=0.0)][::-1]
        self.av_rest = [*accumulate([ld.av_min for ld in back], initial=0)][::-1]
        self.weight_of = {ld.index: ld.w for ld in self.lines}
        self.line_of = {ld.index: ld for ld in self.lines}
        self.req = -1 if req is None else req
        if req is not None and not any(req in ld.pos_of for ld in self.lines):
            self.feasible = False

    def canonical(self, alloc):
        """Tie-break key: fewer shipments, fewer pieces (a line split over
        two nodes is two pieces), node ids, carrier ids, then lines."""
        by_node = {}
        for index, n, a in alloc:
            by_node.setdefault(n, []).append((index, a))
        nodes, carriers, parts = [], [], []
        for n in sorted(by_node):
            part = tuple(sorted(by_node[n]))
            kg = sum(self.weight_of[i] * a for i, a in part)
            nodes.append(self.node_ids[n])
            carriers.append(pick_carrier(self.full[n], kg)[3])
            parts.append(part)
        return len(nodes), len(alloc), tuple(nodes), tuple(carriers), tuple(parts)


class Incumbent:
    """Best plan so far, shared by the searches of all day limits."""

    def __init__(self):
        self.key = [_NO_PLAN, 0, INF]       # avoided, primary (days), value
        self.alloc = self.inst = self.tie = None

    def offer(self, inst, alloc, av, prim, value):
        key = self.key
        if av == key[0] and prim == key[1] and abs(value - key[2]) <= EPS:
            tie = inst.canonical(alloc)
            if self.tie is None:
                self.tie = self.inst.canonical(self.alloc)
            if tie >= self.tie:
                return
        elif (av, prim, value) > (key[0], key[1], key[2]):
            return
        else:
            tie = None
        key[:] = [av, prim, value]
        self.alloc, self.inst, self.tie = list(alloc), inst, tie


def single_nodes(inst):
    """(node, avoided pairs, adjusts) of every node that can ship the whole
    order alone (its candidates and stock), in node order."""
    for n in sorted(inst.lines[0].pos_of):
        if inst.req >= 0 and n != inst.req:
            continue
        need, av, adj = {}, 0, 0.0
        for ld in inst.lines:
            p = ld.pos_of.get(n)
            if p is None:
                break
            _, b, d, v, _ = ld.cands[p]
            need[b] = need.get(b, 0) + ld.q
            av, adj = av + v, adj + d
        else:
            if all(inst.stock[b] >= q for b, q in need.items()):
                yield n, av, adj


def seed_single_node(inst, inc, prim, off):
    """Offer every plan that ships the whole order from one node."""
    lines = inst.lines
    if inst.maxship < 1 or len(lines) < 2:
        return                                   # one line: the search is as fast
    kg = sum(ld.w * ld.q for ld in lines)
    for n, av, adj in single_nodes(inst):
        alloc = [(ld.index, n, ld.q) for ld in lines]
        inc.offer(inst, alloc, av, prim, cost_at(inst.pairs[n], kg) + adj + off)


def branch_and_bound(inst, inc, prim, off, budget):
    """Exhaustive search of ``inst``; raises OutOfBudget when budget[0] < 0.

    Leaves are offered to ``inc`` with key (avoided, prim, cost + off).
    Returns False when some plan was too deep (> MAX_CHUNKS) to explore.
    """
    lines, L = inst.lines, len(inst.lines)
    pairs, fmin, pmin = inst.pairs, inst.fmin, inst.pmin
    pen, maxship, req = inst.pen, inst.maxship, inst.req
    lb_rest, av_rest, adj_rest = inst.lb_rest, inst.av_rest, inst.adj_rest
    rem = list(inst.stock)
    N = len(pairs)
    kg, fcost, is_open = [0.0] * N, [0.0] * N, [False] * N
    openl, alloc, key = [], [], inc.key
    complete = [True]
    end = deadline()                 # the order's time limit (monotonic clock)

    def worse(av, lb):
        """True when every plan with these bounds loses to the incumbent."""
        if av != key[0]:
            return av > key[0]
        if prim != key[1]:
            return prim > key[1]
        return lb + off > key[2] + EPS

    def bound(li, ld, r, lo, cost):
        """Lower bound on the cost of any completion (INF: none possible).

        Either the open nodes ship the rest (each unit at >= their per-kg
        floor) or at least one more shipment opens (its fixed cost + penalty,
        every unit at >= the per-kg floor of all its candidates).
        """
        nopen = len(openl)
        adj_now = ld.adj_lb(r, lo)
        only_open = cost + adj_now + adj_rest[li + 1]
        need, any_fix = -INF, INF                  # fixed cost of a new node
        for j in range(li, L):
            ldj = lines[j]
            start, units = (lo, r) if j == li else (0, ldj.q)
            best_p = INF
            for n in openl:
                p = ldj.pos_of.get(n)
                if p is not None and p >= start and rem[ldj.cands[p][1]] > 0 \
                        and pmin[n] < best_p:
                    best_p = pmin[n]
            fix = ldj.minfix_suf[start]
            if best_p == INF:
                need = max(need, fix)
            else:
                only_open += best_p * ldj.w * units
            any_fix = min(any_fix, fix)
        if req >= 0 and not is_open[req]:
            if ld.pos_of.get(req, -1) < lo and not any(
                    req in lines[j].pos_of for j in range(li + 1, L)):
                return INF
            need = max(need, fmin[req])
        if need > -INF:
            only_open = INF
        else:
            need = any_fix
        if nopen >= maxship:
            return only_open
        with_new = (cost + lb_rest[li + 1] + r * ld.w * ld.pmin_suf[lo]
                    + adj_now + need + (pen if nopen else 0.0))
        return min(only_open, with_new)

    def step(li, ld, r, p, a, cost, av, pc, free):
        """Ship ``a`` of the ``r`` remaining units of line ``ld`` from cands[p]."""
        n, b, adj, a_av, _ = ld.cands[p]
        old_kg, old_f, was_open = kg[n], fcost[n], is_open[n]
        new_kg = old_kg + ld.w * a
        new_f = INF
        for fx, pk in pairs[n]:
            v = fx + pk * new_kg
            if v < new_f:
                new_f = v
        cost += new_f - old_f + adj + (0.0 if was_open else pc)
        av += a_av
        if a == r:
            if worse(av + av_rest[li + 1], cost + lb_rest[li + 1]):
                return
        elif worse(av + ld.av_suf[p + 1] + av_rest[li + 1],
                   cost + (r - a) * ld.w * ld.pmin_suf[p + 1]
                   + ld.adj_lb(r - a, p + 1) + lb_rest[li + 1]):
            return
        kg[n], fcost[n] = new_kg, new_f
        rem[b] -= a
        if not was_open:
            is_open[n] = True
            openl.append(n)
        alloc.append((ld.index, n, a))
        if a < r:
            node(li, r - a, p + 1, cost, av, free)
        else:
            node(li + 1, lines[li + 1].q if li + 1 < L else 0, 0, cost, av)
        alloc.pop()
        if not was_open:
            is_open[n] = False
            openl.pop()
        rem[b] += a
        kg[n], fcost[n] = old_kg, old_f

    def chunks(li, ld, r, p, cost, av, pc, whole=True, free=True):
        """Children taking all (if ``whole``) or part of ``r`` from cands[p].

        A line whose sku no other line has keeps at most one *loose* chunk
        (neither 1 unit nor all the node's stock; ``free``: none yet): moving
        units between two loose chunks changes nothing but two concave
        shipment costs, so some optimum has at most one of them.
        """
        have = rem[ld.cands[p][1]]
        loose_ok = free or not ld.exclusive
        if whole and have >= r and (loose_ok or r == 1 or r == have):
            step(li, ld, r, p, r, cost, av, pc, True)
        if p + 1 < len(ld.cands):                # a later chunk takes the rest
            lo, hi = max(1, r - ld.cap_suf[p + 1]), min(r - 1, have)
            amounts = range(hi, lo - 1, -1) if loose_ok else sorted(
                {a for a in (have, 1) if lo <= a <= hi}, reverse=True)
            for a in amounts:
                step(li, ld, r, p, a, cost, av, pc,
                     free and (not ld.exclusive or a == 1 or a == have))

    def node(li, r, lo, cost, av, free=True):
        """Line ``li`` still needs ``r`` units from positions >= ``lo``."""
        if li == L:
            if req < 0 or is_open[req]:
                budget[0] -= len(alloc)             # a tie is settled by the plans' canonical forms
                inc.offer(inst, alloc, av, prim, cost + off)
            return
        ld = lines[li]
        cands = ld.cands
        budget[0] -= 1 + len(openl) * (L - li)
        if budget[0] < 0 or monotonic() > end:      # work budget or the order's time limit
            raise OutOfBudget
        if len(alloc) >= MAX_CHUNKS:
            complete[0] = False
            return
        tail_av = av_rest[li + 1]
        lb = bound(li, ld, r, lo, cost)
        if lb == INF or worse(av + tail_av + ld.av_suf[lo], lb):
            return
        nopen = len(openl)
        pc = pen if nopen else 0.0
        for n in tuple(openl):                       # open nodes: cheap to add
            p = ld.pos_of.get(n)
            if p is not None and p >= lo and rem[cands[p][1]] > 0:
                chunks(li, ld, r, p, cost, av, pc, free=free)
        if nopen >= maxship:
            return
        tail_lb = lb_rest[li + 1]
        if lo == 0:                                  # new node, whole line
            for p, (n, b, adj, a_av, marg) in enumerate(cands):
                if is_open[n] or rem[b] < r:
                    continue
                budget[0] -= 1
                if worse(av + a_av + tail_av, cost + pc + marg + tail_lb):
                    break                            # sorted: the rest is worse
                step(li, ld, r, p, r, cost, av, pc, True)
        base = cost + pc + ld.negpre[min(r, ld.nneg)] + r * ld.w * ld.pmin_suf[lo] + tail_lb
        for p in ld.fix_order(fmin):                 # new node, part of the line
            n, b, adj, a_av, _ = cands[p]            # (or all of it, mid-line)
            budget[0] -= 1
            if worse(av + a_av + tail_av, base + fmin[n] + adj):
                break                                # sorted: the rest is worse
            if p >= lo and not is_open[n] and rem[b] > 0:
                chunks(li, ld, r, p, cost, av, pc, whole=lo > 0, free=free)

    if L and inst.feasible:
        node(0, lines[0].q, 0, 0.0, 0)
    return complete[0]


# ---------------------------------------------------------------- heuristics
def greedy(inst, inc, prim, off):
    """Offer a quick plan: each line from open nodes first, then the nodes
    cheapest for it alone (splitting as stock runs out)."""
    rem, opened, alloc = list(inst.stock), set(), []
    if inst.req >= 0:
        opened.add(inst.req)
    for ld in inst.lines:
        r = ld.q
        for want_open in (True, False):
            for n, b, _, _, _ in ld.cands:
                if r and rem[b] > 0 and (n in opened) == want_open and (
                        want_open or len(opened) < inst.maxship):
                    a = min(r, rem[b])
                    rem[b] -= a
                    r -= a
                    opened.add(n)
                    alloc.append((ld.index, n, a))
        if r:
            return
    got = _Local(inst, alloc).key()
    if got is not None:
        inc.offer(inst, alloc, got[0], prim, got[1] + off)


class _Local:
    """A plan under local search: chunks ``{(line index, node): qty}``."""

    def __init__(self, inst, alloc):
        self.inst, self.amount, self.kg = inst, {}, {}
        self.used, self.count = [0] * len(inst.stock), {}
        for index, n, a in alloc:
            self.move(index, None, n, a)

    def cand(self, index, n):
        ld = self.inst.line_of[index]
        return ld, ld.cands[ld.pos_of[n]]       # (node, bin, adjust, avoided, _)

    def move(self, index, src, dst, a):
        """Move ``a`` units of line ``index`` from node ``src`` (None: from
        nowhere, when building) to node ``dst``."""
        for n, sign in ((src, -1), (dst, 1)):
            if n is None:
                continue
            ld, (_, b, _, _, _) = self.cand(index, n)
            left = self.amount.get((index, n), 0) + sign * a
            if left:
                self.count[n] = self.count.get(n, 0) + ((index, n) not in self.amount)
                self.amount[index, n] = left
            else:
                del self.amount[index, n]
                self.count[n] -= 1
            self.used[b] += sign * a
            if self.count[n]:
                self.kg[n] = self.kg.get(n, 0.0) + sign * ld.w * a
            else:
                del self.kg[n], self.count[n]

    def key(self):
        """(avoided, cost value), or None when a constraint is broken."""
        inst, av, adj = self.inst, 0, 0.0
        if len(self.kg) > inst.maxship or (inst.req >= 0 and inst.req not in self.kg):
            return None
        if any(u > s for u, s in zip(self.used, inst.stock)):
            return None
        for index, n in self.amount:
            _, (_, _, d, v, _) = self.cand(index, n)
            av, adj = av + v, adj + d
        cost = sum(cost_at(inst.pairs[n], self.kg[n]) for n in sorted(self.kg))
        return av, cost + adj + inst.pen * (len(self.kg) - 1)

    def snapshot(self):
        return dict(self.amount), dict(self.kg), list(self.used), dict(self.count)

    def restore(self, snap):
        self.amount, self.kg, self.used, self.count = snap

    def relocation(self, index, src, dst, a):
        """(d avoided, d cost) of moving a chunk, or None if not allowed."""
        inst = self.inst
        ld, (_, _, adj_s, av_s, _) = self.cand(index, src)
        _, (_, b, adj_d, av_d, _) = self.cand(index, dst)
        empties, opens = self.count[src] == 1, dst not in self.kg
        if self.used[b] + a > inst.stock[b] or (empties and src == inst.req) or (
                len(self.kg) - empties + opens > inst.maxship):
            return None
        w, kept = ld.w * a, (index, dst) in self.amount
        fs, fd = inst.pairs[src], inst.pairs[dst]
        d = (0.0 if empties else cost_at(fs, self.kg[src] - w)) - cost_at(fs, self.kg[src])
        d += cost_at(fd, self.kg.get(dst, 0.0) + w) - (0.0 if opens else cost_at(fd, self.kg[dst]))
        d += inst.pen * (opens - empties) + (0.0 if kept else adj_d) - adj_s
        return (0 if kept else av_d) - av_s, d

    def regroupings(self):
        """Bigger moves, as lists of (line index, from, to, qty): every chunk
        of a node to other open nodes, or every chunk that a closed node can
        take to that node."""
        chunks = sorted(self.amount.items())
        for gone in sorted(self.kg):
            moves = []
            for (index, src), a in chunks:
                if src == gone:
                    pos_of = self.inst.line_of[index].pos_of
                    dst = min((n for n in self.kg if n != gone and n in pos_of),
                              key=pos_of.get, default=None)
                    if dst is None:
                        break
                    moves.append((index, src, dst, a))
            else:
                yield moves
        nodes = {c[0] for ld in self.inst.lines for c in ld.cands}
        for new in sorted(nodes - set(self.kg)):
            yield [(index, src, new, a) for (index, src), a in chunks
                   if new in self.inst.line_of[index].pos_of]


def improve(inc, inst, prim, off, max_evals=40_000):
    """First-improvement local search from the incumbent (a heuristic):
    single chunk relocations (priced incrementally), then regroupings."""
    ls = _Local(inst, inc.alloc)
    best, evals, improved = ls.key(), 0, True
    while improved and evals < max_evals and not expired():
        improved = False
        for (index, src), a in sorted(ls.amount.items()):
            for dst, _, _, _, _ in ls.inst.line_of[index].cands:
                evals += 1
                got = dst != src and ls.relocation(index, src, dst, a)
                if got and (got[0] < 0 or (got[0] == 0 and got[1] < -EPS)):
                    ls.move(index, src, dst, a)
                    best, improved = ls.key(), True
                    break
            if improved:
                break
        for moves in () if improved else ls.regroupings():
            evals += 20
            snap = ls.snapshot()
            for index, src, dst, a in moves:
                ls.move(index, src, dst, a)
            got = ls.key()
            if got is not None and (got[0], got[1]) < (best[0], best[1] - EPS):
                best, improved = got, True
                break
            ls.restore(snap)
    alloc = [(index, n, a) for (index, n), a in sorted(ls.amount.items())]
    inc.offer(inst, alloc, best[0], prim, best[1] + off)


def polish(model, inc, inst, prim, off, work, pool_size=6):
    """Heuristic end game when the exact search ran out of budget: local
    search; then an exhaustive search (``work`` units) restricted to the
    incumbent's nodes and the ``pool_size`` nodes that ship the lines they
    fully stock at the lowest cost per kg; then local search again."""
    improve(inc, inst, prim, off)
    per_kg = []
    for n in sorted({c[0] for ld in inst.lines for c in ld.cands}):
        kg = sum(ld.w * ld.q for ld in inst.lines if n in ld.pos_of
                 and inst.stock[ld.cands[ld.pos_of[n]][1]] >= ld.q)
        per_kg.append((cost_at(inst.pairs[n], kg) / (kg or EPS), n))
    keep = {n for _, n in sorted(per_kg)[:pool_size]} | {c[1] for c in inc.alloc}
    if inst.req >= 0:
        keep.add(inst.req)
    small = Instance(model, None if inst.req < 0 else inst.req, inst.D, keep)
    try:
        branch_and_bound(small, inc, prim, off, [work])
    except OutOfBudget:
        pass
    improve(inc, inst, prim, off)
