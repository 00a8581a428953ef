"""Long orders (more lines than the exact search reaches, engine/_bigsearch.py)
against the exact MILP of bench/exact.py (HiGHS; bench-only dependency).

    python bench/long_orders.py [--count 30] [--first 0] [--objective cost]

Each order is generated from its seed: 150-600 lines (shared skus, qty 1-12,
0.2-6 kg), 5-30 nodes (warehouses with most skus, stores with a few units of
some, vendors), one to three carriers per node, adjusts and avoided pairs on
some pairs, a split penalty of $0, $3 or $10, max shipments on some orders,
capacity left (node_units) on some nodes of about one order in three. Prints
one row per order (allocator value and shipments under engine.limits'
TIME_LIMIT, optimum, gap) and a summary: orders where the allocator finds no
plan or more avoided pairs than the optimum, orders optimal to the cent, mean
and worst gap, slowest allocation. The MILP takes seconds to a minute per
order.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import exact  # noqa: E402
from engine import limits  # noqa: E402
from engine.allocator import Candidate, CarrierOption, Line, Problem, solve  # noqa: E402


def long_order(seed: int) -> Problem:
    rng = random.Random(f"big-{seed}")
    n_lines, n_nodes = rng.randint(150, 600), rng.randint(5, 30)
    nodes = [f"N{i:02d}" for i in range(n_nodes)]
    n_skus = max(1, int(n_lines * rng.choice([0.6, 0.9, 1.0])))
    lines = tuple(Line(i, f"SKU{rng.randrange(n_skus)}", rng.choice([1, 1, 1, 2, 3, 5, 12]),
                       round(rng.uniform(0.2, 6), 2)) for i in range(n_lines))
    carriers = {n: tuple(CarrierOption(f"C{j}", round(rng.uniform(5, 40), 2), round(rng.uniform(0.2, 1.6), 2),
                                       rng.randint(1, 7)) for j in range(rng.randint(1, 3))) for n in nodes}
    kind = {n: rng.choice(["dc", "dc", "store", "store", "store", "vendor"]) for n in nodes}
    kind[nodes[0]] = "dc"
    skus = sorted({ln.sku for ln in lines})
    stock = {}
    for n in nodes:
        for s in skus:
            if kind[n] == "dc":
                if rng.random() < 0.9:
                    stock[n, s] = rng.choice([5, 20, 50, 100])
            elif kind[n] == "store":
                if rng.random() < 0.3:
                    stock[n, s] = rng.randint(1, 4)
            elif rng.random() < 0.5:
                stock[n, s] = rng.randint(10, 60)
    demand = {}
    for ln in lines:
        demand[ln.sku] = demand.get(ln.sku, 0) + ln.qty
    dcs = [n for n in nodes if kind[n] == "dc"]
    full = rng.random() < 0.4              # one warehouse has everything
    for s, q in demand.items():            # most orders can be served
        n = nodes[0] if full else rng.choice(dcs)
        stock[n, s] = max(stock.get((n, s), 0), q)
    cands = []
    adj_rate, av_rate = rng.choice([0.0, 0.1, 0.3]), rng.choice([0.0, 0.0, 0.03])
    for ln in lines:
        for n in nodes:
            if rng.random() < 0.9 or n == nodes[0]:
                adjust = round(rng.uniform(-4, 6), 1) if rng.random() < adj_rate else 0.0
                cands.append(Candidate(ln.index, n, rng.random() < av_rate, adjust))
    pen, limit = rng.choice([0.0, 0.0, 3.0, 10.0]), rng.choice([None, None, None, 2, 3, 5])
    units = None
    if rng.random() < 0.3:
        units = {n: rng.randint(20, 200) for n in nodes if rng.random() < 0.4} or None
        if units:
            stock = {(n, s): min(q, units.get(n, q)) for (n, s), q in stock.items()}
    return Problem(lines, carriers, tuple(cands), stock, split_penalty=pen, max_shipments=limit, node_units=units)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--objective", default="cost", choices=["cost", "speed", "balanced"])
    args = parser.parse_args()
    tally = exact.Tally()
    for seed in range(args.first, args.first + args.count):
        p = long_order(seed)
        if args.objective != "cost":
            p = replace(p, objective=args.objective, day_value=1.5)
        started = time.perf_counter()
        with limits.deadline(limits.TIME_LIMIT):
            plan = solve(p)
        took = time.perf_counter() - started
        tally.add(f"{seed:3d} {len(p.lines):3d} lines {len(p.carriers):2d} nodes", p, plan, exact.solve(p), took)
    print(tally.summary())

if __name__ == "__main__":
    main()
