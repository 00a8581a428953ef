"""Matcher throughput: evaluations per second of engine.matching.run_rules
(pure Python) and engine.durable_engine.run_rules (durable_rules) on the seed
playbook, for fact bases of 1 line x 12 nodes, 3 lines x 12 nodes and
1 line x 100 nodes.

    python bench/matcher_bench.py [--seconds 2] [--seed 7]

Both matchers get the same fact bases (rebuilt for every evaluation, since
tag/set change the order facts) and must return the same firings.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dsl  # noqa: E402
from engine import durable_engine, matching  # noqa: E402
from engine.matching import Entity, FactBase  # noqa: E402

SEED_PLAYBOOK = '''
# The routing knowledge of the seed article (spec/examples/seed.playbook).
playbook "Acme Outfitters"
timezone "America/Chicago"

optimize cost
a day saved is worth $2.00
split penalty $6.00
max shipments 3

group "west coast" is nodes "PDX-STORE", "SEA-STORE", "RENO-3PL"
group "stores" is nodes where node.kind is store

rule "Protect store floor stock"
  when node.kind is store and stock.available <= 2
  then exclude node because "keep the last units for walk-in customers"

rule "Ignore far-away nodes"
  when distance > 2000 km
  then avoid node because "too far from the customer"

rule "Regional carrier Tuesday surcharge"
  when today is tuesday
  then surcharge carrier "REGIONALX" by $6.00

rule "VIP members get the fastest node"
  priority 10
  when customer.tier is "VIP"
  then optimize speed

rule "High margin ships from a warehouse"
  when item.margin >= 40% and node.kind is store
  then penalize node by $15.00

rule "The garage is the last resort"
  when node has tag "safety"
  then avoid node because "founder's garage: use only when nothing else can ship"

rule "Boots drop-ship from the maker"
  when item.category is "footwear"
  then allow vendors

rule "Buy online, pick up in store"
  priority 100
  when order.delivery is "pickup"
  then route to pickup node

rule "Small orders ship complete"
  when order.total < $60
  then ship complete

rule "Peak weekend"
  when today between 2026-11-27 and 2026-11-30
  then tag order "peak"

rule "Keep stores for walk-ins at peak"
  when order has tag "peak" and node in group "stores" and node.load > 70%
  then avoid node because "store is busy with walk-in customers"
'''

KINDS = ("store", "warehouse", "3pl", "vendor")
DAYS = (("tuesday", "2026-11-24"), ("friday", "2026-11-27"), ("saturday", "2026-11-28"),
        ("monday", "2026-12-07"))


def fact_base(lines: int, nodes: int, rng: random.Random) -> tuple:
    """A fact base spec: (order facts, line facts, candidate facts)."""
    weekday, date = rng.choice(DAYS)
    order = {"order.total": round(rng.uniform(20, 400), 2), "order.lines": lines,
             "order.delivery": "pickup" if rng.random() < 0.05 else "ship",
             "order.ship_to.state": rng.choice(("CA", "TX", "FL", "NY", "OR")),
             "order.tags": frozenset({"gift"}) if rng.random() < 0.1 else frozenset(),
             "customer.tier": "VIP" if rng.random() < 0.2 else "regular",
             "customer.tags": frozenset(), "today.weekday": weekday, "today.date": date,
             "now": rng.randrange(0, 1440)}
    line_facts = [{"item.sku": f"SKU-{i}", "item.qty": rng.randint(1, 3),
                   "item.margin": round(rng.uniform(0.1, 0.6), 2),
                   "item.category": rng.choice(("footwear", "outerwear", "camping")),
                   "item.tags": frozenset()} for i in range(lines)]
    node_facts = [{"node.id": f"N{j}", "node.kind": KINDS[j % len(KINDS)],
                   "node.state": rng.choice(("CA", "TX", "OH", "NV", "OR")),
                   "node.load": round(rng.random(), 2),
                   "node.tags": frozenset({"safety"}) if j == nodes - 1 else frozenset()}
                  for j in range(nodes)]
    candidates = [[{**node, "stock.available": rng.randint(0, 20),
                    "distance": round(rng.uniform(10, 4000), 1),
                    "transit": rng.randint(1, 6), "cost": round(rng.uniform(4, 30), 2)}
                   for node in node_facts] for _ in range(lines)]
    return order, line_facts, candidates


def build(spec) -> FactBase:
    order, lines, candidates = spec
    return FactBase(
        dict(order),
        [Entity(f"line:{i}", "line", i, None, facts) for i, facts in enumerate(lines)],
        [Entity(f"cand:{i}:{facts['node.id']}", "candidate", i, facts["node.id"], facts)
         for i, row in enumerate(candidates) for facts in row])


def measure(run, rulebook, specs: list, seconds: float) -> float:
    """Evaluations per second over at least `seconds`."""
    count, start = 0, time.perf_counter()
    while True:
        for spec in specs:
            run(rulebook, build(spec))
        count += len(specs)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rulebook = dsl.compile(SEED_PLAYBOOK, "seed.playbook")
    durable_engine.warm(rulebook)
    print(f"seed playbook: {len(rulebook.rules)} rules; durable ruleset "
          f"{durable_engine.ruleset_name(rulebook)}")
    print(f"{'fact base':<18}{'python eval/s':>15}{'durable eval/s':>16}{'ratio':>8}")
    for lines, nodes in ((1, 12), (3, 12), (1, 100)):
        rng = random.Random(args.seed)
        specs = [fact_base(lines, nodes, rng) for _ in range(20)]
        for spec in specs:       # same answers before timing anything
            expected = [(f.rule.index, f.entity.id) for f in matching.run_rules(rulebook, build(spec))]
            got = [(f.rule.index, f.entity.id) for f in durable_engine.run_rules(rulebook, build(spec))]
            assert got == expected, (lines, nodes, spec)
        python = measure(matching.run_rules, rulebook, specs, args.seconds)
        durable = measure(durable_engine.run_rules, rulebook, specs, args.seconds)
        label = f"{lines} line x {nodes} nodes"
        print(f"{label:<18}{python:>15,.0f}{durable:>16,.0f}{python / durable:>7.1f}x")


if __name__ == "__main__":
    main()
