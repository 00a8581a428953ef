"""Timings of engine.allocator.solve on seeded random instances.

    PYTHONPATH=. python bench/allocator_bench.py [--runs 200] [--objective cost] [--wall]

Times are CPU milliseconds per solve (time.process_time, robust on a busy
machine); --wall switches to wall-clock time.

Instances look like real ones: ~10% warehouses with ample stock, the rest
stores holding 0-3 units per sku; 1-3 carrier options per node (fixed 5-25,
per_kg 0.3-1.6, days 1-7); qty mostly 1; every node is a candidate.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace

from engine.allocator import Candidate, CarrierOption, Line, Problem, solve

SIZES = [(1, 100), (3, 100), (5, 100), (6, 30), (10, 100), (20, 100)]


def instance(rng: random.Random, n_lines: int, n_nodes: int) -> Problem:
    nodes = [f"{'WH' if i % 10 == 0 else 'ST'}{i:03d}" for i in range(n_nodes)]
    skus = [f"SKU{rng.randint(0, 40)}" for _ in range(n_lines)]
    lines = tuple(Line(i, sku, rng.choice([1, 1, 1, 1, 2, 3]), round(rng.uniform(0.2, 5), 2))
                  for i, sku in enumerate(skus))
    carriers = {n: tuple(CarrierOption(f"C{j}", round(rng.uniform(5, 25), 2),
                                       round(rng.uniform(0.3, 1.6), 2), rng.randint(1, 7))
                         for j in rng.sample(range(5), rng.randint(1, 3)))
                for n in nodes}
    stock = {}
    for n in nodes:
        for sku in sorted(set(skus)):
            if n.startswith("WH"):
                stock[n, sku] = rng.choice([0, 40, 200, 200, 500])
            else:
                stock[n, sku] = rng.choice([0, 0, 0, 1, 2, 3])
    cands = tuple(Candidate(ln.index, n, rng.random() < 0.02,
                            rng.choice([0.0] * 8 + [1.5, -0.5]))
                  for ln in lines for n in nodes)
    return Problem(lines, carriers, cands, stock, split_penalty=rng.choice([0.0, 2.0]),
                   day_value=1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--objective", action="append",
                    choices=["cost", "speed", "balanced"])
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    args = ap.parse_args()
    clock = time.perf_counter if args.wall else time.process_time
    print(f"{'objective':<9} {'lines':>5} {'nodes':>5} {'mean ms':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'exact':>6}")
    for objective in args.objective or ["cost", "speed", "balanced"]:
        for n_lines, n_nodes in SIZES:
            rng = random.Random(f"{n_lines}x{n_nodes}")
            runs = args.runs if n_lines <= 6 else max(args.runs // 10, 5)
            times, exact = [], 0
            for _ in range(runs):
                p = replace(instance(rng, n_lines, n_nodes), objective=objective)
                start = clock()
                plan = solve(p)
                times.append((clock() - start) * 1000)
                exact += plan is not None and plan.exact
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{objective:<9} {n_lines:>5} {n_nodes:>5} {statistics.mean(times):>8.2f} "
                  f"{times[len(times) // 2]:>8.2f} {p99:>8.2f} {times[-1]:>8.2f} "
                  f"{exact / runs:>6.0%}")


if __name__ == "__main__":
    main()
