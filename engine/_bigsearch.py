"""Search for orders too long for the exact search (internal; standard
library only; see ``engine/allocator.py``).

The exact search of :mod:`engine._search` goes one level deeper per chunk of
a plan and stops at MAX_CHUNKS chunks, so an order of more lines than that
has no plan it can reach. Such orders are planned here instead, per day
limit (one :class:`~engine._search.Instance` each), by a construction and a
local search over :class:`~engine._bigplan.Plan`. The result is not proven
optimal (the allocator's ``Plan.exact`` is False), but every step keeps
every limit: a line ships only from its candidates, a bin's stock, a node's
units left today (``units``: the Problem's node_units, kept here directly
rather than shared out per sku), max shipments and the required node.

Start: the better of the best single-node plan and a built one: nodes are
added one at a time, each time the one with room for most of what is still
unassigned; each line goes where it adds least, and what is left over moves
along augmenting paths (as in a max-flow), so a plan is found whenever the
chosen nodes can ship the order at all, and always when max shipments does
not bind (then every node may be chosen). When max shipments stops the
build, it starts again from each of a few other nodes; when the start uses
more avoided pairs than the fewest possible, a build that uses them only
where nothing else can serve a line is tried too. The rebuilds from other
first nodes run only when every node together could ship the order.

Local search, each move kept when it lowers (avoided pairs, value) by more
than IMPROVE (so it never adds an avoided pair):

* open: a closed node takes what it ships for less than the chunk's node
  does at its present rate per kg (a whole chunk, one unit to earn a
  preference there, or all but one unit to keep one here), as far as its
  stock and units go; the TRIALS (node, carrier rate) that look best by a
  linear estimate are tried, the best one kept, then the others that still
  pay;
* relocate: a chunk (a line's units at one node), all of it or a part
  (for preferences, or as much as there is room for), to the other open
  node where that pays most; to a full node by moving the cheapest chunks
  out of it; to a closed node only when that uses fewer avoided pairs;
* close: the chunks of an open node go to the other open nodes (each where
  it adds least, then along augmenting paths); of the TRIALS that look
  best, the best one;
* swap, when none of those pays: a closed node takes an open one's chunks
  (and what else it ships for less) and the rest go to the other open
  nodes; at a local optimum the KICKS swaps that came closest are made in
  turn, each followed by the search, and the first that ends better is kept.

Day limits ("speed" and "balanced"): each gets half of the work left (the
last all of it) and those that cannot beat the best plan so far are
skipped; under "speed", a plan with every carrier comes first (a quarter of
the work), so that there is one when the time runs out. Once there is a
plan, no day limit starts past the time limit (or when its instance could
not be built in time); until there is one, only the one with every carrier
still starts past it.

Mid-size orders (engine/allocator.py): when the exact search runs out of
its budget, :func:`improve_from` runs this local search from its plan (made
to keep the units first: :func:`repaired`), then :func:`reopened`, a tabu
search over the set of open nodes that prices each set by assigning the
order to it afresh, then the local search again.

It stops at a local optimum, when its share of the work budget is spent
(a work unit is roughly a microsecond of CPU) or at the order's time limit.
"""
from __future__ import annotations

import heapq
import itertools
from time import monotonic

from ._bigplan import Plan
from ._search import EPS, INF, _Local, cost_at, single_nodes
from .limits import current as deadline, expired

IMPROVE = 1e-6      # smallest gain a move must bring (well above rounding)
KICKS = 4           # near-miss swaps tried at a local optimum
TRIALS = 6          # nodes (and rates) tried per opening or swap
STALE = 8           # moves in a row that find nothing better end the search over node sets
POOL = 12           # closed nodes tried per step of the descent over node sets
FIRSTS = 12         # first nodes tried when building under max shipments fails


def search(inc, limits, make, units, floor, work):
    """Offer to ``inc`` the best plan found for each day limit that could
    still beat it. ``limits``: (D, primary, offset) as allocator._day_limits
    gives them; ``make(D)``: the Instance of day limit D; ``units``: per
    node the units it may ship (INF: no limit); ``floor``: fewest avoided
    pairs of any plan; ``work``: work units for all the searches (a day
    limit's search gets half of what is left, the last one all of it)."""
    bound, top = None, max((D for D, _, _ in limits if D is not None), default=None)
    if len(limits) > 1 and limits[0][0] != top:     # "speed": first a plan with every carrier
        inst = make(top)                            # (a quarter of the work), then the others
        plan = _start(inst, units, floor) if inst.feasible else None
        if plan is not None:
            if inst.maxship > 1:
                plan.improve(work // 4)
                work -= work // 4 - max(plan.left, 0)
            _offer(inc, plan, top, 0.0)
    building = 0.0          # the longest an instance took to build (seconds)
    for i, (D, prim, off) in enumerate(limits):
        if inc.alloc is None:                   # out of time with no plan: every carrier
            if D != top and expired():
                continue
        else:                                   # out of work or time: what was found
            if work <= 0 or expired() or monotonic() + building > deadline():
                break
            key = inc.key
            if (floor, prim) != (key[0], key[1]):
                if (floor, prim) > (key[0], key[1]):
                    continue                    # cannot win on avoided pairs or days
            elif bound is not None and bound + off > key[2] + EPS:
                continue                        # cannot win on value
        started = monotonic()
        inst = make(D)
        building = max(building, monotonic() - started)
        if D == top:                            # every carrier: a floor for every D
            bound = inst.lb_rest[0]
        plan = _start(inst, units, floor) if inst.feasible else None
        if plan is None:
            continue
        _offer(inc, plan, prim, off)
        if inst.maxship > 1:                    # half of what is left; all for the last
            share = work if i == len(limits) - 1 else work // 2
            plan.improve(share)
            work -= share - max(plan.left, 0)
            _offer(inc, plan, prim, off)


def improve_from(inc, inst, prim, off, units, work, alloc=None):
    """From ``alloc`` (default: ``inc``'s plan) in ``inst``, made to keep
    ``units`` first (:func:`repaired`): the local search (module doc) with
    half of ``work`` units, :func:`reopened` with half of what is left, the
    local search again with the rest; offers what it ends with."""
    plan = repaired(inst, units, inc.alloc if alloc is None else alloc)
    if plan is not None:
        _offer(inc, plan, prim, off)
        if inst.maxship > 1:
            plan.improve(work // 2)
            _offer(inc, plan, prim, off)
            work -= work // 2 - max(plan.left, 0)
            plan = reopened(plan, work // 2)
            work -= work // 2 - max(plan.left, 0)
            plan.improve(work)
            _offer(inc, plan, prim, off)


def reopened(plan, work):
    """A search over the set of open nodes (a tabu search): from the
    present set, it prices every set not priced before that closes one open
    node, swaps it for one of the POOL closed nodes whose opening looks best
    (:meth:`_Search._promising`) among those that can ship some of the
    lines no other open node can (and, room permitting, for as many more as
    ship the rest of those: each the one that ships most of them), or
    (under max shipments) adds one of the POOL -- or, when none of those
    is left to price, closes two open nodes and opens nodes alike -- and
    moves to the best of them even when that is worse. The closings are
    priced first, then the swaps and additions, best first, in turn; a set
    is priced by assigning the order to it afresh (:meth:`Plan.fill`, then
    chunk relocations while they pay). Stops after STALE moves in a row that do
    not beat the best plan, when no set is left or ``work`` units are
    spent; returns the best plan (``left``: the work not spent)."""
    inst, units, left = plan.inst, plan.units, work

    def priced(nodes):
        nonlocal left
        p = _Search(inst, units)
        p.left = left
        ok = not p.fill(nodes, True)
        while ok and p.left > 0 and p._relocate():
            pass
        left = p.left
        p.log.clear()
        return p if ok and p._made() and p.fits() else None

    def neighbours(plan, drop):
        nonlocal left
        now, order = plan._opened(), []
        plan.left = left
        for _, n, _ in plan._promising(None):
            if n not in order:
                order.append(n)
        left = plan.left
        rank, drops, lists = {n: i for i, n in enumerate(order)}, [], []
        for gone in itertools.combinations([m for m in now if m != inst.req], drop):
            rest = [n for n in now if n not in gone]
            # the lines no other open node can ship: the nodes that take their place must
            orphans = [plan.lines[li].pos_of for m in gone for li in sorted(plan.on[m])
                       if not any(n in plan.lines[li].pos_of for n in rest)]
            if not orphans:
                drops.append(rest)
            lists.append([])
            tried = 0
            for n in order:
                if tried == POOL or left <= 0:
                    break
                left -= len(orphans) + 1
                left_out = [pos for pos in orphans if n not in pos]
                if orphans and len(left_out) == len(orphans):
                    continue
                tried += 1
                nodes = rest + [n]
                while left_out and len(nodes) < inst.maxship:   # cover the others
                    left -= len(order) * len(left_out)
                    k = min(order, key=lambda k: (-sum(k in pos for pos in left_out), rank[k]))
                    if k in nodes or not any(k in pos for pos in left_out):
                        break
                    nodes.append(k)
                    left_out = [pos for pos in left_out if k not in pos]
                if not left_out:
                    lists[-1].append(sorted(nodes))
        if drop == 1 and len(now) < inst.maxship:
            lists.append([sorted(now + [n]) for n in order[:POOL]])
        # the closings first, then the swaps (and additions) best first, in turn
        yield from drops
        for r in range(max(map(len, lists), default=0)):
            yield from (sets[r] for sets in lists if r < len(sets))

    best, seen, stale = plan, {tuple(plan._opened())}, 0
    while stale < STALE and left > 0 and not expired():
        found = []
        for drop in (1, 2):             # two nodes at a time when no one-node move is left
            for nodes in neighbours(plan, drop):
                if tuple(nodes) in seen:
                    continue
                seen.add(tuple(nodes))
                got = priced(nodes)
                if got is not None:
                    found.append((got.key(), len(found), got))
                if left <= 0 or expired():
                    break
            if found or left <= 0 or expired():
                break
        if not found:
            break
        plan = min(found, key=lambda f: f[:2])[2]
        stale += 1
        if _Search._better(plan.key(), best.key()):
            best, stale = plan, 0
    best.left = left
    best.log.clear()
    return best


def repaired(inst, units, alloc):
    """The plan ``alloc`` with what its nodes ship past their ``units``
    taken off them (the lines last in ``inst.lines`` first: the lightest of
    those with many candidates) and given to its other nodes (where it adds
    least, then along augmenting paths), and to more nodes as long as they
    cannot take it all (each time the one with room for most of what is
    left) and max shipments allows; else None."""
    plan = _Search(inst, units, alloc)
    for n in plan.nodes:
        for li in sorted(plan.on[n], reverse=True):
            over = plan.load[n] - units[n]
            if over <= 0:
                break
            plan.shift(li, n, None, min(over, plan.at[li][n]))
    chosen = plan._opened()
    while any(plan.need) and plan.fill(chosen, True):
        if len(chosen) >= inst.maxship:
            return None
        # one more node: the one with room for most of what is left
        got = min(((-plan.coverage(n), inst.pmin[n], inst.fmin[n], n) for n in plan.nodes if n not in chosen),
                  default=(0,))
        if got[0] >= 0:
            return None
        chosen.append(got[3])
    plan.log.clear()
    return plan if plan.fits() else None


def _start(inst, units, floor):
    """The plan the local search starts from (module doc), or None."""
    if inst.maxship < 1:
        return None
    starts = [p for p in (_single(inst, units), _built(inst, units)) if p is not None]
    if not starts:                              # max shipments: start from another node
        starts = _built_from_others(inst, units)
    if not starts:
        return None
    plan = min(starts, key=_Search.key)
    if plan.av > floor:                         # try harder for fewer avoided pairs
        plan = min([plan] + [p for p in (_built(inst, units, True),) if p is not None], key=_Search.key)
    return plan


def _offer(inc, plan, prim, off):
    """Offer ``plan`` to ``inc`` if it keeps every limit (it always should)."""
    alloc = plan.alloc()
    got = _Local(plan.inst, alloc).key()
    if got is not None and plan.fits():
        inc.offer(plan.inst, alloc, got[0], prim, got[1] + off)


def _rate(pairs, kg):
    """Per-kg rate of the cheapest of ``pairs`` at ``kg``."""
    best = rate = INF
    for fixed, per_kg in pairs:
        v = fixed + per_kg * kg
        if v < best:
            best, rate = v, per_kg
    return rate


def _single(inst, units):
    """The best plan that ships the whole order from one node, or None."""
    best, total = None, sum(ld.q for ld in inst.lines)
    kg = sum(ld.w * ld.q for ld in inst.lines)
    for n, av, adj in single_nodes(inst):
        got = (av, cost_at(inst.pairs[n], kg) + adj, n)
        if total <= units[n] and (best is None or got < best):
            best = got
    if best is None:
        return None
    return _Search(inst, units, [(ld.index, best[2], ld.q) for ld in inst.lines])


def _built(inst, units, shun=False, first=None):
    """A plan over nodes added one at a time (``first``, then each time the
    one with room for most of what is unassigned), or None when max
    shipments runs out first. With ``shun``, lines use avoided pairs only
    when nothing else can ship them (or all of their pairs are avoided)."""
    plan = _Search(inst, units)
    plan.shun = shun
    chosen = sorted({n for n in (inst.req, first) if n is not None and n >= 0})
    if len(chosen) > inst.maxship:
        return None

    def pick(heap):
        # what a node has room for only shrinks as lines are assigned: keep
        # the last count per node and recount only the best until it stays best
        while heap and len(chosen) < inst.maxship:
            _, pmin, fmin, n = heapq.heappop(heap)
            if n in chosen:
                continue
            got = (-plan.coverage(n), pmin, fmin, n)
            if not heap or got <= heap[0]:
                if got[0] < 0:
                    return n
            elif got[0] < 0:
                heapq.heappush(heap, got)
        return None

    def fresh():
        heap = [(-INF, inst.pmin[n], inst.fmin[n], n) for n in plan.nodes if n not in chosen]
        heapq.heapify(heap)
        return heap
    heap = fresh()
    while plan.fill(chosen, False):         # (at most one pass per node: not cut short)
        n = pick(heap)
        if n is not None:
            chosen.append(n)
        elif not plan.fill(chosen, True):       # what the chosen ones can do
            break
        elif len(plan.nodes) <= inst.maxship and len(chosen) < len(plan.nodes):
            chosen = list(plan.nodes)           # others may make room by taking lines
        elif plan.shun:                         # avoided pairs where nothing else serves
            plan.shun = False
            heap = fresh()
        else:
            return None
    if inst.req >= 0 and not plan.on[inst.req] and not plan.give_req():
        return None
    plan.log.clear()
    plan.shun = False
    return plan if plan.fits() else None


def _built_from_others(inst, units):
    """[a plan] built from the first of the FIRSTS nodes with room for most
    of the order that leads to one (adding the node with room for most first
    can lead to a set that max shipments allows no more to); [] if none."""
    empty = _Search(inst, units)
    if len(empty.nodes) <= inst.maxship:        # the build could use every node: no plan
        return []
    first = sorted((-empty.coverage(n), n) for n in empty.nodes)[:FIRSTS]
    if empty.fill(empty.nodes, True):           # not even every node together: no plan
        return []
    for _, n in first:
        plan = _built(inst, units, first=n)
        if plan is not None or expired():
            return [plan] if plan is not None else []
    return []


class _Search(Plan):
    """A plan under local search (module doc)."""

    def improve(self, work):
        """Local search (module doc) with ``work`` units: open and close
        nodes while that pays, else relocate chunks, else swap nodes; at a
        local optimum, kick: make the KICKS swaps that came closest to
        paying and search on from each, keeping the first that ends better."""
        self.left, self.near = work, []
        self._descend(True)
        while self.left > 0 and not expired():
            for trial in self.near:
                mark, before = len(self.log), self.key()
                if trial() and self._made():
                    self._descend(False)
                    if self._better(self.key(), before):
                        break
                self.undo(mark)
            else:
                return
            self.log.clear()
            self._descend(True)

    def _descend(self, top):
        """Make moves while one pays (forgetting the log at the ``top``)."""
        while self.left > 0 and not expired():
            if not (self._best_open() or self._relocate() or self._best_close() or self._best_swap()):
                return              # near: the swaps that came closest
            if top:
                self.log.clear()
        self.near = []

    def _made(self):
        """After a trial that assigned every unit: within max shipments,
        with the required node."""
        return self.nopen <= self.inst.maxship and (self.inst.req < 0 or bool(self.on[self.inst.req]))

    @staticmethod
    def _better(got, than):
        return got[0] < than[0] or (got[0] == than[0] and got[1] < than[1] - IMPROVE)

    def _try(self, trials, more=False):
        """Run each trial (a callable: True when it made a plan) from the
        present plan and undo it; then redo the best one if it pays (and,
        with ``more``, each other one that paid, in turn, while it still
        does). Returns True when one was kept; else ``near`` holds the
        KICKS trials that came closest."""
        mark, now, ranked = len(self.log), self.key(), []
        made = self._made
        for i, trial in enumerate(trials):
            if trial() and made():
                ranked.append((self.key(), i))
            self.undo(mark)
            if self.left <= 0 or expired():
                break
        ranked.sort()
        if not ranked or not self._better(ranked[0][0], now):
            self.near = [trials[i] for _, i in ranked[:KICKS]]
            return False
        trials[ranked[0][1]]()
        for got, i in ranked[1:] if more else ():
            if not self._better(got, now) or self.left <= 0 or expired():
                break
            mark, before = len(self.log), self.key()
            if not (trials[i]() and made() and self._better(self.key(), before)):
                self.undo(mark)
        return True

    def _best_open(self):
        if self.nopen >= self.inst.maxship:
            return False
        return self._try([lambda n=n, r=r: self._open(n, r) for _, n, r in self._promising()], True)

    def _best_close(self):
        if self.nopen < 2:
            return False
        return self._try([lambda m=m: self._close(m) for _, m in self._closable()])

    def _best_swap(self):
        closable = [m for _, m in self._closable()]
        return self._try([lambda n=n, m=m: self._swap(n, m)
                          for n in sorted({n for _, n, _ in self._promising()}) for m in closable])

    def _promising(self, count=TRIALS):
        """The ``count`` (estimate, closed node, rate) whose opening looks
        best by :meth:`_estimate`, one per carrier rate of each node."""
        found = []
        for n in self.nodes:
            if not self.on[n]:
                fixed = {}
                for f, r in self.inst.pairs[n]:
                    fixed[r] = min(f, fixed.get(r, INF))
                found.extend((self._estimate(n, r, f), n, r) for r, f in sorted(fixed.items()))
        found.sort()
        return found[:count]

    def _closable(self):
        """The TRIALS (estimate, open node) whose closing looks best: each
        chunk priced at the cheapest other open node at its rate in force
        (no stock or units counted)."""
        pen, pairs, found = self.inst.pen, self.inst.pairs, []
        opened = self._opened()
        rates = {n: _rate(pairs[n], self.kg[n]) for n in opened}
        for m in opened:
            if m == self.inst.req:
                continue
            dav, d = 0, -self.cost[m] - pen
            for li in self.on[m]:
                ld, at = self.lines[li], self.at[li]
                _, _, adj_m, av_m, _ = ld.cands[ld.pos_of[m]]
                self.left -= len(opened)
                best = None
                for n in opened:
                    p = ld.pos_of.get(n)
                    if p is not None and n != m:
                        _, _, adj, av, _ = ld.cands[p]
                        new = n not in at
                        got = (av if new else 0, rates[n] * ld.w * at[m] + (adj if new else 0.0))
                        if best is None or got < best:
                            best = got
                if best is None:
                    dav, d = INF, INF
                    break
                dav, d = dav + best[0] - av_m, d + best[1] - adj_m
            found.append(((dav, d), m))
        found.sort()
        return found[:TRIALS]

    def _swap(self, n, m):
        """Close node ``m`` for the closed node ``n``: m's chunks go to n as
        far as it has room, n takes what else it ships for less
        (:meth:`_open` at its lowest rate), and the rest of m's chunks go to
        the open nodes (:meth:`_close`)."""
        for li in sorted(self.on[m]):
            ld = self.lines[li]
            p = ld.pos_of.get(n)
            if p is not None:
                a = min(self.at[li][m], self.room(n, ld.cands[p][1]))
                if a > 0:
                    self.shift(li, m, n, a)
        self._open(n, self.inst.pmin[n])
        return self._close(m)

    def _picks(self, n, rate):
        """What closed node ``n`` would take at ``rate`` per kg: each chunk
        it ships for less than the chunk's node at its present rate, all of
        it, or one unit (to earn a preference at n), or all but one (to keep
        one where it is), whichever saves most; best savings per unit first:
        (d avoided, -saving per unit, line, node, units, chunk, bin, saving
        per unit before adjusts, adjust at n)."""
        pairs, rates, picks = self.inst.pairs, {}, []
        for li in self.lines_of.get(n, ()):
            ld = self.lines[li]
            _, b, adj_n, av_n, _ = ld.cands[ld.pos_of[n]]
            self.left -= 2
            for src, a in self.at[li].items():
                _, _, adj_s, av_s, _ = ld.cands[ld.pos_of[src]]
                if av_n > av_s or src == n:
                    continue
                r = rates.get(src)
                if r is None:
                    r = rates[src] = _rate(pairs[src], self.kg[src])
                per_unit = (r - rate) * ld.w
                gain, m = per_unit * a + adj_s - adj_n, a
                if a > 1 and not av_n:
                    for part in (1, a - 1):
                        if per_unit * part - adj_n > gain:
                            gain, m = per_unit * part - adj_n, part
                if av_n < av_s or gain > 0:
                    picks.append((av_n - av_s if m == a else 0, -gain / m, li, src, m, a, b, per_unit, adj_n))
        picks.sort()
        return picks

    def _estimate(self, n, rate, fixed):
        """(d avoided, d value) of :meth:`_open` priced at the rates in
        force (the shipments' costs are concave in kg: no more than that)."""
        rooms, left = {}, self.units[n] - self.load[n]
        dav, d = 0, fixed + self.inst.pen
        for dav_i, per, li, src, want, a, b, per_unit, adj_n in self._picks(n, rate):
            m = min(want, rooms.get(b, self.inst.stock[b] - self.used[b]), left)
            if m > 0 and (m == a or (not dav_i and per_unit * m > adj_n)):
                rooms[b], left = rooms.get(b, self.inst.stock[b] - self.used[b]) - m, left - m
                dav += dav_i
                d += per * m if m == want else adj_n - per_unit * m
        return dav, d

    def _open(self, n, rate):
        """Shift to closed node ``n`` what :meth:`_picks` says, as far as
        n's room goes. Returns True if anything moved."""
        moved = False
        for dav, _, li, src, want, a, b, per_unit, adj_n in self._picks(n, rate):
            m = min(want, self.room(n, b))
            if m > 0 and (m == a or (not dav and per_unit * m > adj_n)):
                self.shift(li, src, n, m)
                moved = True
        return moved

    def _close(self, m):
        """Move every chunk of node ``m`` to the other open nodes (where it
        adds least, then along augmenting paths); False when they cannot
        take it all."""
        others = self._opened(m)
        for li in sorted(self.on[m]):
            self.shift(li, m, None, self.at[li][m])
        return not self.fill(others, True)

    def _relocate(self):
        """Each chunk, in turn, to the other node where that pays most."""
        inst, changed = self.inst, False
        pairs, pen, stock, on = inst.pairs, inst.pen, inst.stock, self.on
        for li, ld in enumerate(self.lines):
            if li % 64 == 0 and (self.left <= 0 or expired()):
                break
            at = self.at[li]
            self.left -= len(ld.cands) // 2 + 1
            for src in sorted(at):
                a = at.get(src)
                if not a:
                    continue
                _, _, adj_s, av_s, _ = ld.cands[ld.pos_of[src]]
                closes = len(on[src]) == 1 and at[src] == a
                if closes and src == inst.req:
                    continue
                base = (0.0 if closes else cost_at(pairs[src], self.kg[src] - ld.w * a)) - self.cost[src]
                best = blocked = None
                for n, b, adj, av, _ in ld.cands:
                    opens = not on[n]
                    if n == src or (opens and not (av_s and not av)):
                        continue            # a closed node only to avoid an avoided pair
                    room = min(stock[b] - self.used[b], self.units[n] - self.load[n])
                    if opens and (room < a or self.nopen - closes >= inst.maxship):
                        continue
                    new, amounts = n not in at, (min(a, room),) if room > 0 else ()
                    if not opens:           # a part: to earn a preference there, or keep one here
                        if new and adj < 0 and room > 1 and a > 1:
                            amounts += (1,)
                        if adj_s < 0 and room >= a > 1:
                            amounts += (a - 1,)
                        if room < a:        # all of it, were there room (-a)
                            amounts += (-a,)
                    for m in amounts:
                        gone, full = m == a or m == -a, abs(m)
                        d = base if gone else cost_at(pairs[src], self.kg[src] - ld.w * m) - self.cost[src]
                        d += cost_at(pairs[n], self.kg[n] + ld.w * full) - self.cost[n]
                        d += pen * (opens - (closes and gone)) + (adj if new else 0.0) - (adj_s if gone else 0.0)
                        got = ((av if new else 0) - (av_s if gone else 0), d)
                        if m < 0:
                            if blocked is None or got < blocked[0]:
                                blocked = (got, n)
                        elif best is None or got < best[0]:
                            best = (got, n, m)
                if best is not None and self._better(best[0], (0, 0.0)):
                    self.shift(li, src, best[1], best[2])
                    changed = True
                elif blocked is not None and self._better(blocked[0], (0, 0.0)):
                    changed = self._eject_into(li, src, blocked[1], a) or changed
        return changed

    def _eject_into(self, li, src, n, a):
        """Move ``a`` units of line ``li`` from ``src`` to the open node
        ``n``, then as much of other lines out of ``n`` (each to the other
        open node where it adds least per unit, the cheapest first) as its
        stock and units need; kept only if the whole pays."""
        mark, before = len(self.log), self.key()
        self.shift(li, src, n, a)
        ld, stock, pairs = self.lines[li], self.inst.stock, self.inst.pairs
        b, others = ld.cands[ld.pos_of[n]][1], self._opened(n)
        while self.used[b] > stock[b] or self.load[n] > self.units[n]:
            over = max(self.load[n] - self.units[n], self.used[b] - stock[b])
            same_bin, best = self.used[b] > stock[b], None
            for l2 in sorted(self.in_bin[b] if same_bin else self.on[n]):
                ld2, at2 = self.lines[l2], self.at[l2]
                _, _, adj_n, av_n, _ = ld2.cands[ld2.pos_of[n]]
                if l2 == li:
                    continue
                q = min(at2[n], over)
                self.left -= len(others)
                for n2 in others:
                    p2 = ld2.pos_of.get(n2)
                    if p2 is None:
                        continue
                    _, bb, adj, av, _ = ld2.cands[p2]
                    mm = min(q, stock[bb] - self.used[bb], self.units[n2] - self.load[n2])
                    if mm <= 0:
                        continue
                    gone, new = mm == at2[n], n2 not in at2
                    d = cost_at(pairs[n2], self.kg[n2] + ld2.w * mm) - self.cost[n2]
                    d += (adj if new else 0.0) - (adj_n if gone else 0.0)
                    got = ((av if new else 0) - (av_n if gone else 0), d / mm, l2, n2, mm)
                    if best is None or got < best:
                        best = got
            if best is None:
                self.undo(mark)
                return False
            self.shift(best[2], n, best[3], best[4])
        if self._better(self.key(), before):
            return True
        self.undo(mark)
        return False
