"""A plan under construction for the long-order search (internal; see
``engine/_bigsearch.py``): per line its chunks, per node its weight, cost
and units, per bin its units, with every change logged so that trials can
be undone exactly (weights and costs restored, not recomputed: no rounding
drift builds up over many trials), and the construction's two steps: each
unassigned line to the chosen node where it adds least, then augmenting
paths (as in a max-flow) for what is left.
"""
from __future__ import annotations

from ._search import INF, cost_at


class Plan:
    """A plan being built or improved: per line (by position in inst.lines)
    its chunks {node: qty} and units not yet assigned; per node its kg,
    cost, units and lines; per bin the units used and its lines. ``log``
    records every shift so that trials can be undone; ``left`` counts down
    the work units."""

    def __init__(self, inst, units, alloc=()):
        self.inst, self.units, self.lines = inst, units, inst.lines
        N = len(inst.pairs)
        self.at = [{} for _ in self.lines]
        self.need = [ld.q for ld in self.lines]
        self.on = [set() for _ in range(N)]
        self.kg, self.cost, self.load = [0.0] * N, [0.0] * N, [0] * N
        self.used = [0] * len(inst.stock)
        self.in_bin = [set() for _ in inst.stock]
        self.nopen, self.adj, self.av, self.log, self.left = 0, 0.0, 0, [], INF
        self.shun = False       # building: no avoided pair where a line has another
        self.dead = set()       # (node, bin) states no augmenting path gets through
        self.lines_of = {}      # node -> positions of the lines it is a candidate for
        for li, ld in enumerate(self.lines):
            for c in ld.cands:
                self.lines_of.setdefault(c[0], []).append(li)
        self.nodes = sorted(self.lines_of)
        pos = {ld.index: li for li, ld in enumerate(self.lines)}
        for index, n, a in alloc:
            self.shift(pos[index], None, n, a)
        self.log.clear()

    # ------------------------------------------------------------ state
    def shift(self, li, src, dst, a):
        """Move ``a`` units of line ``li`` from node ``src`` to ``dst``
        (None: from or to unassigned)."""
        ld, at, pairs, kg, cost = self.lines[li], self.at[li], self.inst.pairs, self.kg, self.cost
        self.log.append((li, src, dst, a, self.adj, src is not None and (kg[src], cost[src]),
                         dst is not None and (kg[dst], cost[dst])))
        self.left -= 3
        w = ld.w * a
        if src is None:
            self.need[li] -= a
        else:
            _, b, adj, av, _ = ld.cands[ld.pos_of[src]]
            self.used[b] -= a
            self.load[src] -= a
            if at[src] == a:
                del at[src]
                self.on[src].discard(li)
                self.in_bin[b].discard(li)
                self.adj -= adj
                self.av -= av
            else:
                at[src] -= a
            if self.on[src]:
                kg[src] -= w
                cost[src] = cost_at(pairs[src], kg[src])
            else:
                kg[src] = cost[src] = 0.0
                self.nopen -= 1
        if dst is None:
            self.need[li] += a
        else:
            _, b, adj, av, _ = ld.cands[ld.pos_of[dst]]
            self.used[b] += a
            self.load[dst] += a
            if dst in at:
                at[dst] += a
            else:
                if not self.on[dst]:
                    self.nopen += 1
                at[dst] = a
                self.on[dst].add(li)
                self.in_bin[b].add(li)
                self.adj += adj
                self.av += av
            kg[dst] += w
            cost[dst] = cost_at(pairs[dst], kg[dst])

    def undo(self, mark):
        """Undo every shift after ``mark`` (a length of ``log``), exactly."""
        log = self.log
        while len(log) > mark:
            li, src, dst, a, adj, was_src, was_dst = log.pop()
            self.shift(li, dst, src, a)
            log.pop()
            for n, was in ((src, was_src), (dst, was_dst)):
                if n is not None:
                    self.kg[n], self.cost[n] = was
            self.adj = adj

    def key(self):
        """(avoided pairs, value) of the plan."""
        return self.av, sum(self.cost) + self.adj + self.inst.pen * (self.nopen - 1)

    def room(self, n, b):
        return min(self.inst.stock[b] - self.used[b], self.units[n] - self.load[n])

    def alloc(self):
        return [(ld.index, n, a) for li, ld in enumerate(self.lines)
                for n, a in sorted(self.at[li].items())]

    def fits(self):
        """Every line whole, every bin and node within its limits."""
        inst = self.inst
        return (not any(self.need) and self.nopen <= inst.maxship
                and (inst.req < 0 or bool(self.on[inst.req]))
                and all(u <= s for u, s in zip(self.used, inst.stock))
                and all(u <= c for u, c in zip(self.load, self.units)))

    def _opened(self, but=None):
        return [n for n in self.nodes if self.on[n] and n != but]

    # ------------------------------------------------------ construction
    def fill(self, chosen, augment):
        """Assign what is unassigned to the ``chosen`` nodes: each line to
        the one where it adds least (fewer avoided pairs first), as far as
        there is room, then to the next; then (``augment``) along
        augmenting paths. Returns the units still unassigned."""
        need, pairs = self.need, self.inst.pairs
        for li, ld in enumerate(self.lines):
            while need[li]:
                best = None
                self.left -= len(chosen)
                for n in chosen:
                    p = ld.pos_of.get(n)
                    if p is None or (self.shun and ld.cands[p][3] > ld.av_min):
                        continue
                    _, b, adj, av, _ = ld.cands[p]
                    a = min(need[li], self.room(n, b))
                    if a > 0:
                        new = n not in self.at[li]
                        d = cost_at(pairs[n], self.kg[n] + ld.w * a) - self.cost[n] + (adj if new else 0.0)
                        got = (av if new else 0, d / a, n, a)
                        if best is None or got < best:
                            best = got
                if best is None:
                    break
                self.shift(li, None, best[2], best[3])
        self.dead.clear()
        for li in range(len(self.lines)) if augment else ():
            while need[li] and self._augment(li, chosen):
                self.dead.clear()
        return sum(need)

    def _augment(self, first, chosen):
        """Push units to line ``first`` along one augmenting path through
        the ``chosen`` nodes (a line gives up units at a node to the line
        before it on the path and takes as many at another); returns the
        units pushed. The (node, bin) states a failed search saw are dead
        until something moves: no path from them gets through either."""
        lines, came = self.lines, {first: None}   # line -> (line it gives to, node, limit)
        queue, seen, full = [first], set(), set()
        for li in queue:
            ld, gives = lines[li], came[li] and came[li][1]
            self.left -= len(chosen)
            for n in chosen:
                p = ld.pos_of.get(n)
                if p is None or n == gives or (self.shun and ld.cands[p][3] > ld.av_min):
                    continue
                b = ld.cands[p][1]
                if (n, b) in seen or (n, b) in self.dead:
                    continue
                seen.add((n, b))
                bin_room = self.inst.stock[b] - self.used[b]
                if bin_room > 0 and self.units[n] > self.load[n]:
                    return self._push(came, li, n, self.room(n, b))
                if bin_room <= 0:           # a line in the bin gives some up
                    others = sorted(self.in_bin[b])
                elif n not in full:         # the node is full: any line there
                    full.add(n)
                    others = sorted(self.on[n])
                else:
                    continue
                for other in others:
                    if other not in came:
                        came[other] = (li, n, bin_room if bin_room > 0 else INF)
                        queue.append(other)
        self.dead |= seen
        return 0

    def _push(self, came, li, to, amount):
        path = []
        while came[li] is not None:
            taker, gives, limit = came[li]
            path.append((li, gives, to))
            amount = min(amount, limit, self.at[li][gives])
            li, to = taker, gives
        path.append((li, None, to))
        amount = min(amount, self.need[li])
        for line, src, dst in path:
            self.shift(line, src, dst, amount)
        return amount

    def coverage(self, n):
        """Units of what is unassigned that node ``n`` has room for."""
        want = {}
        for li in self.lines_of.get(n, ()):
            if self.need[li]:
                ld = self.lines[li]
                _, b, _, av, _ = ld.cands[ld.pos_of[n]]
                if not (self.shun and av > ld.av_min):
                    want[b] = want.get(b, 0) + self.need[li]
        got = sum(min(q, self.inst.stock[b] - self.used[b]) for b, q in want.items())
        return min(got, self.units[n] - self.load[n])

    def give_req(self):
        """Move to the required node the chunk (or what fits of it) that
        costs least there; False when none can go."""
        req, best = self.inst.req, None
        for li in self.lines_of.get(req, ()):
            ld = self.lines[li]
            b = ld.cands[ld.pos_of[req]][1]
            for src, a in sorted(self.at[li].items()):
                m = min(a, self.room(req, b))
                if m > 0:
                    mark = len(self.log)
                    self.shift(li, src, req, m)
                    got = (self.key(), li, src, m)
                    self.undo(mark)
                    if best is None or got < best:
                        best = got
        if best is None:
            return False
        self.shift(best[1], best[2], req, best[3])
        return True
