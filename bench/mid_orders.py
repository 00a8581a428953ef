"""Mid-size orders on large networks (20-150 lines, 50-300 nodes: the exact
search of engine/_search.py runs out of its work budget on many of them)
against the exact MILP of bench/exact.py (HiGHS; bench-only dependency).

    python bench/mid_orders.py [--count 40] [--first 0] [--cache FILE]

Each order is generated from its seed: 20-150 lines (some sharing a sku,
qty 1-4, 0.1-5 kg), 50-300 nodes at random places (a few warehouses with
most skus, stores with a few units of some; a sku is stocked at 5-20 nodes
besides), one to three carriers per node priced by distance to the
customer, a line's candidates are the nodes that stock its sku (a few
adjusts and avoided pairs), a split penalty of $0 or $3, max shipments of
3-9 on six orders in seven (most of them binding), capacity left
(node_units) on a third of the nodes of half the orders. Prints one row per
order (allocator value, shipments and time under engine.limits'
TIME_LIMIT, optimum, gap) and a summary: mean and worst gap, mean and
slowest time. ``--cache`` keeps the optima (a JSON file keyed by seed) so
that a second run costs only the allocator.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import limits  # noqa: E402
from engine.allocator import Candidate, CarrierOption, Line, Problem, solve  # noqa: E402


def mid_order(seed: int) -> Problem:
    rng = random.Random(f"mid-{seed}")
    n_lines, n_nodes = rng.randint(20, 150), rng.randint(50, 300)
    nodes = [f"N{i:03d}" for i in range(n_nodes)]
    place = {n: (rng.uniform(0, 3000), rng.uniform(0, 1500)) for n in nodes}
    home = (rng.uniform(0, 3000), rng.uniform(0, 1500))
    kind = {n: "dc" if rng.random() < 0.05 else "store" for n in nodes}
    carriers = {}
    for n in nodes:
        km = math.dist(place[n], home)
        handling = rng.uniform(0.5, 3.0)
        carriers[n] = tuple(
            CarrierOption(f"C{j}", round(base + km * rate + handling, 2), round(per_kg, 2), days)
            for j, (base, rate, per_kg, days) in enumerate(
                [(4.0, 0.004, 0.55, 4), (6.0, 0.006, 0.35, 3), (9.0, 0.009, 0.9, 1)][:rng.randint(1, 3)]))
    n_skus = max(1, int(n_lines * rng.choice([0.8, 1.0, 1.0])))
    lines = tuple(Line(i, f"S{rng.randrange(n_skus):04d}", rng.choice([1, 1, 1, 2, 2, 3, 4]),
                       round(rng.uniform(0.1, 5), 2)) for i in range(n_lines))
    skus = sorted({ln.sku for ln in lines})
    stock = {}
    for s in skus:
        for n in rng.sample(nodes, rng.randint(5, 20)):
            stock[n, s] = rng.randint(1, 6) if kind[n] == "store" else rng.randint(10, 100)
        for n in nodes:
            if kind[n] == "dc" and rng.random() < 0.6:
                stock[n, s] = rng.randint(10, 100)
    demand = {}
    for ln in lines:
        demand[ln.sku] = demand.get(ln.sku, 0) + ln.qty
    for s, q in demand.items():             # every order can be served
        if sum(v for (n, t), v in stock.items() if t == s) < q:
            n = rng.choice(nodes)
            stock[n, s] = stock.get((n, s), 0) + q
    cands = []
    adj_rate, av_rate = rng.choice([0.0, 0.0, 0.1]), rng.choice([0.0, 0.0, 0.02])
    for ln in lines:
        for n in nodes:
            if (n, ln.sku) in stock:
                adjust = round(rng.uniform(-3, 5), 1) if rng.random() < adj_rate else 0.0
                cands.append(Candidate(ln.index, n, rng.random() < av_rate, adjust))
    pen = rng.choice([0.0, 0.0, 3.0])
    limit = rng.choice([None, 3, 4, 5, 6, 7, 9])
    units = None
    if rng.random() < 0.5:
        units = {n: rng.randint(3, 40) for n in nodes if rng.random() < 0.35} or None
        if units:
            stock = {(n, s): min(q, units.get(n, q)) for (n, s), q in stock.items()}
    return Problem(lines, carriers, tuple(cands), stock, split_penalty=pen, max_shipments=limit,
                   node_units=units)


def optimum_of(seed: int, p: Problem, cache: dict) -> tuple | None:
    key = str(seed)
    if key not in cache:
        import exact
        found = exact.solve(p)
        cache[key] = None if found is None else list(found)
    return cache[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="JSON file of optima by seed (read and written)")
    args = parser.parse_args()
    import exact
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    tally = exact.Tally()
    for seed in range(args.first, args.first + args.count):
        p = mid_order(seed)
        started = time.perf_counter()
        with limits.deadline(limits.TIME_LIMIT):
            plan = solve(p)
        took = time.perf_counter() - started
        optimum = optimum_of(seed, p, cache)
        if args.cache:
            args.cache.write_text(json.dumps(cache, sort_keys=True))
        head = (f"{seed:3d} {len(p.lines):3d} lines {len(p.carriers):3d} nodes "
                f"max {p.max_shipments or '-':>2} {'cap' if p.node_units else '   '}")
        tally.add(head, p, plan, optimum, took)
    print(tally.summary())

if __name__ == "__main__":
    main()
